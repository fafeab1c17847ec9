"""A site with its DIMSE door on a free loopback port, DCMTK clients, synthetic studies."""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydicom.uid import (
    UID,
    ComputedRadiographyImageStorage,
    CTImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    MRImageStorage,
    SecondaryCaptureImageStorage,
)
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext
from pynetdicom.transport import ThreadedAssociationServer

from twinpacs.app import build_site
from twinpacs.config import load_settings
from twinpacs.core.parsing import parse_part10
from twinpacs.dimse import DimseServer, start_dimse
from twinpacs.dimse.server import STORAGE_TRANSFER_SYNTAXES
from twinpacs.dimse.transport import CONNECTION_HANDLERS
from twinpacs.synthetic import StudySpec, available_transfer_syntaxes, write_study
from tests.backend import backend_url

HOST = "127.0.0.1"
AE_TITLE = "TWINPACS"
SYNTHETIC_SOP_CLASSES = {CTImageStorage: "CT", MRImageStorage: "MR", ComputedRadiographyImageStorage: "CR",
                         SecondaryCaptureImageStorage: "OT"}
StartServer = Callable[..., DimseServer]


def launch(data_dir: Path, destinations: dict[str, str] | None = None, limits: dict[str, object] | None = None,
           **dicom: object) -> DimseServer:
    """A site in `data_dir` with its DIMSE door on a free loopback port."""
    settings = load_settings(overrides={
        "site": {"data_dir": data_dir, "ae_title": AE_TITLE},
        "database": {"url": backend_url(data_dir)},
        "dicom": {"port": 0, "move_destinations": destinations or {}, **dicom},
        "limits": limits or {},
    })
    return start_dimse(build_site(settings))


def stop(server: DimseServer) -> None:
    server.shutdown()
    server.site.close()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """launch() bound to the test's folder; every server started is stopped afterwards."""
    servers: list[DimseServer] = []

    def start(destinations: dict[str, str] | None = None, limits: dict[str, object] | None = None,
              **dicom: object) -> DimseServer:
        servers.append(launch(tmp_path / f"site{len(servers)}", destinations, limits, **dicom))
        return servers[-1]

    yield start
    for server in servers:
        stop(server)


@pytest.fixture
def server(start_server: StartServer) -> DimseServer:
    return start_server()


def dcmtk(tool: str, *args: str | Path, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a DCMTK client with Nagle off (Debian's build otherwise leaves it on)."""
    result = subprocess.run([tool, *map(str, args)], env={**os.environ, "TCP_NODELAY": "1"},
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{tool} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


@contextmanager
def association(port: int, contexts: list[PresentationContext], ae_title: str = "TESTSCU",
                **kwargs: Any) -> Iterator[Association]:
    """A pynetdicom client association, for what DCMTK cannot send or report; with Nagle
    off like every DICOM socket here (else each request waits ~40 ms for a delayed ACK)."""
    handlers = [*CONNECTION_HANDLERS, *kwargs.pop("evt_handlers", [])]
    assoc = AE(ae_title=ae_title).associate(HOST, port, contexts=contexts, ae_title=AE_TITLE,
                                            evt_handlers=handlers, **kwargs)
    assert assoc.is_established
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()


def listen(ae: AE, handlers: list[Any]) -> ThreadedAssociationServer:
    """Start a test-side pynetdicom listener on a free port; stop it with .shutdown().
    Like AE.start_server(block=False) but polling for shutdown every 10 ms, not 0.5 s."""
    server = ae.make_server((HOST, 0), evt_handlers=[*CONNECTION_HANDLERS, *handlers],
                            server_class=ThreadedAssociationServer)
    ae._servers.append(server)  # AssociationServer.shutdown() removes it
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    return server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, timeout: float = 10.0) -> None:
    """Poll until something accepts TCP connections on `port` (a spawned DCMTK listener)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def dcmtk_profile(path: Path, sop_classes: list[str], syntaxes: list[str]) -> Path:
    """A storescu/storescp configuration file with one profile, "Twinpacs": each SOP class
    with exactly these transfer syntaxes (their command-line flags cannot name them all)."""
    lines = ["[[TransferSyntaxes]]", "[Syntaxes]"]
    lines += [f"TransferSyntax{n} = {uid}" for n, uid in enumerate(syntaxes, 1)]
    lines += ["[[PresentationContexts]]", "[Contexts]"]
    lines += [f"PresentationContext{n} = {uid}\\Syntaxes" for n, uid in enumerate(sop_classes, 1)]
    lines += ["[[Profiles]]", "[Twinpacs]", "PresentationContexts = Contexts"]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def storescp(tmp_path: Path) -> Iterator[tuple[str, int, Path]]:
    """DCMTK storescp accepting every syntax twinpacs does and writing what it receives bit for bit."""
    port, folder = free_port(), tmp_path / "storescp"
    folder.mkdir()
    config = dcmtk_profile(tmp_path / "storescp.cfg", list(SYNTHETIC_SOP_CLASSES), STORAGE_TRANSFER_SYNTAXES)
    proc = subprocess.Popen(["storescp", "-aet", "STORESCP", "-xf", str(config), "Twinpacs", "+B",
                             "-od", str(folder), str(port)],
                            env={**os.environ, "TCP_NODELAY": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port)
        yield "STORESCP", port, folder
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def dataset_bytes(data: bytes) -> bytes:
    """A Part 10 object's data set, without preamble and file meta (which every writer redoes)."""
    return data[parse_part10(data).dataset_offset:]


SYNTAXES = [*available_transfer_syntaxes(), ExplicitVRBigEndian]


def spec(syntax: str = ExplicitVRLittleEndian, **changes: object) -> StudySpec:
    base = StudySpec(series=1, instances_per_series=2, rows=32, columns=32, transfer_syntax=syntax)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def write_files(syntax: UID, folder: Path, seed: int = 0) -> list[Path]:
    """Synthetic files in `syntax` (UIDs follow the seed, not the syntax); big endian via
    DCMTK, which pydicom no longer writes."""
    if syntax != ExplicitVRBigEndian:
        return write_study(spec(syntax, seed=seed), folder)
    converted = []
    for path in write_study(spec(seed=seed), folder / "little"):
        converted.append(folder / path.name)
        dcmtk("dcmconv", "+tb", path, converted[-1])
    return converted


def store_files(server: DimseServer, files: list[Path]) -> None:
    """Put files straight into the archive (the C-STORE path has its own tests)."""
    for path in files:
        server.site.archive.store(path.read_bytes(), source="TEST")


@dataclasses.dataclass(frozen=True)
class Pki:
    """PEM files made at test time: a CA, a server certificate for 127.0.0.1/localhost, a
    client certificate and a "node" certificate (both uses: a DICOM node that listens and
    calls) it issued, and a self-signed "rogue" certificate from no CA."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path
    rogue_key: Path
    node_cert: Path
    node_key: Path


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def issue(name: str, issuer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None, usage: list[x509.ObjectIdentifier],
              ca: bool = False) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        issuer_cert, issuer_key = issuer if issuer else (None, key)
        builder = (x509.CertificateBuilder().subject_name(subject)
                   .issuer_name(issuer_cert.subject if issuer_cert else subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                  critical=False))
        if ca:
            builder = builder.add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
                critical=True)
        else:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False).add_extension(
                x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                             x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
        return builder.sign(issuer_key, hashes.SHA256()), key

    def write(name: str, pair: tuple[x509.Certificate, rsa.RSAPrivateKey]) -> tuple[Path, Path]:
        cert, key = folder / f"{name}.pem", folder / f"{name}.key"
        cert.write_bytes(pair[0].public_bytes(serialization.Encoding.PEM))
        key.write_bytes(pair[1].private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        return cert, key

    authority = issue("twinpacs test CA", None, [], ca=True)
    ca, _ = write("ca", authority)
    server = write("server", issue("twinpacs test server", authority, [ExtendedKeyUsageOID.SERVER_AUTH]))
    client = write("client", issue("twinpacs test client", authority, [ExtendedKeyUsageOID.CLIENT_AUTH]))
    both = [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
    rogue = write("rogue", issue("rogue", None, both))
    node = write("node", issue("twinpacs test node", authority, both))
    return Pki(ca, *server, *client, *rogue, *node)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))
