"""DICOM TLS with DCMTK's echoscu/storescu and pynetdicom, certificates made at test time."""

from __future__ import annotations

import logging
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pynetdicom import AE, build_context

from twinpacs.config import load_settings
from twinpacs.dimse import DimseServer
from twinpacs.dimse.tls import server_context
from twinpacs.dimse.uids import Verification
from twinpacs.errors import ConfigurationError
from twinpacs.synthetic import write_study

from .conftest import AE_TITLE, HOST, Pki, StartServer, dcmtk, spec

ADMITTED = {"ECHOSCU": {}, "STORESCU": {"rights": ["store"]}, "PYNETDICOM": {}}


@pytest.fixture(autouse=True)
def secure_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWINPACS_DICOM__ACCEPT_UNKNOWN_AE", raising=False)


def tls_server(start_server: StartServer, pki: Pki, require_client_cert: bool = True) -> DimseServer:
    return start_server(allowed_aes=ADMITTED, tls_cert_file=pki.server_cert, tls_key_file=pki.server_key,
                        tls_ca_file=pki.ca, tls_require_client_cert=require_client_cert)


def tls_args(cert: Path, key: Path, *trusted: Path) -> list[str | Path]:
    return ["+tls", key, cert, *(a for ca in trusted for a in ("+cf", ca))]


def test_echoscu_and_storescu_over_tls_with_a_client_certificate(
        start_server: StartServer, pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="twinpacs.dimse.server"):
        server = tls_server(start_server, pki)
    assert "(TLS only)" in caplog.text
    dcmtk("echoscu", *tls_args(pki.client_cert, pki.client_key, pki.ca), "-aec", AE_TITLE, HOST, server.port)
    files = write_study(spec(), tmp_path / "study")
    dcmtk("storescu", *tls_args(pki.client_cert, pki.client_key, pki.ca), "-aec", AE_TITLE, HOST, server.port, *files)
    assert server.site.archive.figures()["instances"] == len(files)


def test_a_client_certificate_from_no_trusted_ca_fails(
        start_server: StartServer, pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    server = tls_server(start_server, pki)
    with caplog.at_level(logging.WARNING, logger="twinpacs.dimse.tls"):
        result = dcmtk("echoscu", *tls_args(pki.rogue_cert, pki.rogue_key, pki.ca), "-aec", AE_TITLE, HOST,
                       server.port, check=False)
    assert result.returncode != 0
    assert "DICOM TLS handshake with 127.0.0.1 failed: [SSL: CERTIFICATE_VERIFY_FAILED]" in caplog.text


def test_a_client_that_does_not_trust_the_server_certificate_fails(start_server: StartServer, pki: Pki) -> None:
    server = tls_server(start_server, pki)
    # The client trusts only the rogue certificate, not the CA that issued the server's.
    result = dcmtk("echoscu", *tls_args(pki.client_cert, pki.client_key, pki.rogue_cert), "-aec", AE_TITLE, HOST,
                   server.port, check=False)
    assert result.returncode != 0
    assert "certificate verify failed" in result.stdout + result.stderr


def test_tls_without_a_client_certificate_fails_when_one_is_required(start_server: StartServer, pki: Pki) -> None:
    server = tls_server(start_server, pki)
    context = ssl.create_default_context(cafile=pki.ca)
    assoc = AE(ae_title="PYNETDICOM").associate(HOST, server.port, contexts=[build_context(Verification)],
                                                ae_title=AE_TITLE, tls_args=(context, "localhost"))
    assert not assoc.is_established
    context.load_cert_chain(pki.client_cert, pki.client_key)
    assoc = AE(ae_title="PYNETDICOM").associate(HOST, server.port, contexts=[build_context(Verification)],
                                                ae_title=AE_TITLE, tls_args=(context, "localhost"))
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0
    assoc.release()


def test_the_tls_port_speaks_only_tls_and_the_ae_must_still_be_admitted(start_server: StartServer, pki: Pki) -> None:
    server = tls_server(start_server, pki, require_client_cert=False)
    assert dcmtk("echoscu", "-aec", AE_TITLE, HOST, server.port, check=False, timeout=30).returncode != 0
    # No client certificate needed now; an AE not admitted is still rejected inside TLS.
    trusting = ["+tls", pki.client_key, pki.client_cert, "+cf", pki.ca]
    dcmtk("echoscu", *trusting, "-aec", AE_TITLE, HOST, server.port)
    result = dcmtk("echoscu", *trusting, "-aet", "INTRUDER", "-aec", AE_TITLE, HOST, server.port, check=False)
    assert result.returncode != 0 and "Rejected" in result.stdout + result.stderr


def test_a_silent_connection_does_not_hold_up_the_next_handshake(start_server: StartServer, pki: Pki) -> None:
    server = tls_server(start_server, pki)
    with socket.create_connection((HOST, server.port)):  # connects, never says hello
        started = time.monotonic()
        dcmtk("echoscu", *tls_args(pki.client_cert, pki.client_key, pki.ca), "-aec", AE_TITLE, HOST, server.port)
        assert time.monotonic() - started < 5


# -- configuration -------------------------------------------------------------------------

def settings_with(tmp_path: Path, **dicom: object) -> object:
    return load_settings(overrides={"site": {"data_dir": tmp_path}, "dicom": dicom}, environment=False).dicom


@pytest.mark.parametrize(("dicom", "message"), [
    ({"tls_cert_file": "a.pem"}, "tls_cert_file and tls_key_file go together"),
    ({"tls_key_file": "a.key"}, "tls_cert_file and tls_key_file go together"),
    ({"tls_ca_file": "ca.pem"}, "need tls_cert_file and tls_key_file"),
    ({"tls_cert_file": "a.pem", "tls_key_file": "a.key", "tls_require_client_cert": True}, "needs tls_ca_file"),
])
def test_incomplete_tls_settings_are_configuration_errors(tmp_path: Path, dicom: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        settings_with(tmp_path, **dicom)


def test_unreadable_or_wrong_files_are_named(tmp_path: Path, pki: Pki) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigurationError, match=f"dicom.tls_cert_file: cannot read {missing}: No such file"):
        server_context(settings_with(tmp_path, tls_cert_file=missing, tls_key_file=pki.server_key))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="not a PEM certificate and its unencrypted private key"):
        server_context(settings_with(tmp_path, tls_cert_file=pki.server_cert, tls_key_file=pki.client_key))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="dicom.tls_ca_file .*: no PEM CA certificate"):
        server_context(settings_with(tmp_path, tls_cert_file=pki.server_cert, tls_key_file=pki.server_key,  # type: ignore[arg-type]
                                     tls_ca_file=pki.server_key))


def test_serve_with_an_unreadable_certificate_stops_with_one_line(tmp_path: Path, pki: Pki) -> None:
    twinpacs = Path(sys.executable).with_name("twinpacs")
    result = subprocess.run(
        [str(twinpacs), "serve", "--data-dir", str(tmp_path / "site"), "--role", "active", "--no-peers",
         "--database-url", f"sqlite:///{tmp_path / 'index.sqlite3'}", "--dicom-port", "0", "--http-port", "0"],
        env={**os.environ, "TWINPACS_DICOM__TLS_CERT_FILE": str(tmp_path / "gone.pem"),
             "TWINPACS_DICOM__TLS_KEY_FILE": str(pki.server_key)},
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"configuration error: dicom.tls_cert_file: cannot read {tmp_path / 'gone.pem'}" in result.stderr
    assert "Traceback" not in result.stderr
