"""HTTPS: `twinpacs serve` with a certificate made at test time, a client trusting only that CA;
the session cookie is Secure there. And a third-party DICOMweb client with a bearer token."""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
import logging
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pydicom
import pytest
import requests
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from dicomweb_client.api import DICOMwebClient

from twinpacs.app import build_site
from twinpacs.config import load_settings
from twinpacs.errors import ConfigurationError
from twinpacs.serve import check_tls, warn_open_doors
from twinpacs.synthetic import StudySpec, encode, make_study
from twinpacs.web import create_app
from tests.served import ServedApp

from .conftest import OPENER, PASSWORD, TOKENS, bearer, csrf_of, secure_settings


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1 signed by it: (ca, cert, key) PEM files."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "twinpacs test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
          .not_valid_after(now + dt.timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def test_serve_speaks_https_only_with_a_secure_cookie(tmp_path: Path) -> None:
    ca, cert, key = _certificates(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != OPENER}
    env.update(TWINPACS_HTTP__TLS_CERT_FILE=str(cert), TWINPACS_HTTP__TLS_KEY_FILE=str(key))
    data = tmp_path / "site"
    admin_token = TOKENS["administrator"]
    process = subprocess.Popen(
        [sys.executable, "-m", "twinpacs", "serve", "--data-dir", str(data), "--no-peers", "--role", "active",
         "--database-url", f"sqlite:///{data / 'index.sqlite3'}", "--http-port", "0", "--dicom-port", "0",
         "--api-token", f"{admin_token}=administrator"],
        env=env, stderr=subprocess.PIPE, text=True)
    try:
        url = ""
        assert process.stderr is not None
        for line in process.stderr:
            assert admin_token not in line
            if found := re.search(r"HTTP (https://[\d.]+:\d+)", line):
                url = found[1]
                break
        assert url, "no ready line"
        trusting = ssl.create_default_context(cafile=str(ca))
        with httpx.Client(base_url=url, verify=trusting, follow_redirects=False) as client:
            assert client.get("/healthz").json()["status"] == "ok"
            assert client.get("/api/config").status_code == 401
            assert client.get("/api/config", headers={"Authorization": f"Bearer {admin_token}"}).status_code == 200
            form = client.get("/login")
            assert "secure" in form.headers["set-cookie"].lower()  # even the login form's CSRF cookie
        with pytest.raises(httpx.ConnectError):  # an untrusted certificate is refused by a careful client
            httpx.get(f"{url}/healthz", verify=ssl.create_default_context())
        with pytest.raises(httpx.HTTPError):  # and plain http is not served on that port
            httpx.get(url.replace("https://", "http://") + "/healthz", timeout=2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_session_cookie_is_secure_over_https(tmp_path: Path) -> None:
    """In process, so the login itself can be driven: uvicorn with the same TLS options as serve."""
    ca, cert, key = _certificates(tmp_path)
    site = build_site(load_settings(overrides=secure_settings(tmp_path)))
    app = create_app(site)
    app.state.guard.accounts.add("radiologist1", "radiologist", PASSWORD)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off",
                                           ssl_certfile=cert, ssl_keyfile=key))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        url = f"https://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        with httpx.Client(base_url=url, verify=ssl.create_default_context(cafile=str(ca)),
                          follow_redirects=False) as client:
            form = client.get("/login")
            answer = client.post("/login", data={"name": "radiologist1", "password": PASSWORD,
                                                 "csrf_token": csrf_of(form.text)})
            assert answer.status_code == 303
            cookie = answer.headers.get_list("set-cookie")
            session = next(c for c in cookie if c.startswith("twinpacs_session="))
            assert "secure" in session.lower() and "httponly" in session.lower()
            assert client.get("/").status_code == 200
    finally:
        server.should_exit = True
        thread.join(10)
        site.close()


def test_an_open_door_is_warned_about_at_every_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(overrides={**secure_settings(tmp_path), "http": {"bind": "0.0.0.0"}},
                             environment=False)
    with caplog.at_level(logging.WARNING, logger="twinpacs"):
        warn_open_doors(settings)
    assert [r.message for r in caplog.records if "anonymous_role" in r.message] == []
    assert any("without TLS" in r.message for r in caplog.records)
    caplog.clear()
    opened = load_settings(overrides={**secure_settings(tmp_path), "security": {"anonymous_role": "radiologist"}},
                           environment=False)
    with caplog.at_level(logging.WARNING, logger="twinpacs"):
        warn_open_doors(opened)
    assert any("anonymous_role" in r.message and r.levelno == logging.WARNING for r in caplog.records)


def test_dicomweb_client_with_a_bearer_token(served: ServedApp) -> None:
    spec = StudySpec(patient_id="DWC01", series=1, instances_per_series=2, rows=8, columns=8, seed=5)
    datasets = [pydicom.dcmread(io.BytesIO(encode(ds))) for ds in make_study(spec)]  # as read from files
    session = requests.Session()
    session.headers.update(bearer("service"))
    client = DICOMwebClient(f"{served.url}/dicom-web", session=session)
    client.store_instances(datasets)
    found = client.search_for_studies(search_filters={"PatientID": "DWC01"})
    assert [s["0020000D"]["Value"][0] for s in found] == [datasets[0].StudyInstanceUID]
    retrieved = client.retrieve_study(datasets[0].StudyInstanceUID)
    assert sorted(ds.SOPInstanceUID for ds in retrieved) == sorted(ds.SOPInstanceUID for ds in datasets)
    anonymous = DICOMwebClient(f"{served.url}/dicom-web")
    with pytest.raises(requests.HTTPError) as refused:
        anonymous.search_for_studies()
    assert refused.value.response.status_code == 401


def test_tls_needs_both_files_and_says_which_one_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="tls_cert_file and tls_key_file go together"):
        load_settings(overrides={**secure_settings(tmp_path), "http": {"tls_cert_file": tmp_path / "c.pem"}},
                      environment=False)
    settings = load_settings(overrides={**secure_settings(tmp_path), "http": {
        "tls_cert_file": tmp_path / "missing.pem", "tls_key_file": tmp_path / "missing.key"}}, environment=False)
    with pytest.raises(ConfigurationError, match=r"http.tls_cert_file: .*missing.pem is not a readable file"):
        check_tls(settings)
