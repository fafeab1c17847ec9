"""DICOM TLS (PS3.15 B.1, the BCP 195 profiles): the server's SSL context from dicom.tls_*,
a listener that does each TLS handshake in the connection's own thread, and the context of
the associations this site opens itself to a node configured with TLS.

pynetdicom's AssociationServer wraps each accepted socket in its accept loop, where the
handshake runs: a client that connects and sends nothing would hold every other connection
up. Here the loop only accepts; the handshake follows in the connection's thread, bounded
in time, and a failed one (an untrusted or missing client certificate, plain DICOM on the
TLS port) is logged and closes that connection only."""

from __future__ import annotations

import logging
import socket
import ssl
from pathlib import Path
from typing import Any

from pynetdicom.transport import ThreadedAssociationServer

from ..config import DicomSettings
from ..errors import ConfigurationError

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT_S = 10.0


def server_context(settings: DicomSettings) -> ssl.SSLContext | None:
    """The listener's SSL context, None without tls_cert_file. ConfigurationError naming the
    setting and file when one cannot be read or used."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # BCP 195: nothing older
    _load_own_certificate(context, settings.tls_cert_file, settings.tls_key_file)
    if settings.tls_ca_file is not None:
        ca = _readable("dicom.tls_ca_file", settings.tls_ca_file)
        try:
            context.load_verify_locations(cafile=ca)
        except ssl.SSLError as exc:
            raise ConfigurationError(f"dicom.tls_ca_file {ca}: no PEM CA certificate ({exc.reason or exc})") from None
        # Without the requirement a client may still present a certificate; it must then be valid.
        context.verify_mode = ssl.CERT_REQUIRED if settings.tls_require_client_cert else ssl.CERT_OPTIONAL
    return context


def client_context(settings: DicomSettings) -> ssl.SSLContext:
    """The context of an association this site opens with TLS: the remote's certificate must
    chain to dicom.tls_remote_ca_file (else the system's CAs) and name the host connected to;
    this site's own certificate, if it has one, is shown when the remote asks for one."""
    if settings.tls_remote_ca_file is None:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    else:
        ca = _readable("dicom.tls_remote_ca_file", settings.tls_remote_ca_file)
        try:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
        except ssl.SSLError as exc:
            raise ConfigurationError(
                f"dicom.tls_remote_ca_file {ca}: no PEM CA certificate ({exc.reason or exc})") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # BCP 195: nothing older
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        _load_own_certificate(context, settings.tls_cert_file, settings.tls_key_file)
    return context


def _load_own_certificate(context: ssl.SSLContext, cert_file: Path, key_file: Path) -> None:
    cert = _readable("dicom.tls_cert_file", cert_file)
    key = _readable("dicom.tls_key_file", key_file)
    try:
        # password "": an encrypted key fails here rather than prompting on the terminal
        context.load_cert_chain(cert, key, password="")
    except ssl.SSLError as exc:
        raise ConfigurationError(
            f"dicom.tls_cert_file {cert} with dicom.tls_key_file {key}: not a PEM certificate and its "
            f"unencrypted private key ({exc.reason or exc})") from None


def _readable(key: str, path: Path) -> str:
    try:
        with open(path, "rb"):
            return str(path)
    except OSError as exc:
        raise ConfigurationError(f"{key}: cannot read {path}: {exc.strerror or exc}") from None


class TlsAssociationServer(ThreadedAssociationServer):
    """ThreadedAssociationServer whose TLS handshake runs in the connection's thread."""

    ssl_context: ssl.SSLContext

    def get_request(self) -> tuple[socket.socket, Any]:
        client, address = self.socket.accept()  # type: ignore[union-attr]
        return self.ssl_context.wrap_socket(client, server_side=True, do_handshake_on_connect=False), address

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        timeout = request.gettimeout()
        try:
            request.settimeout(HANDSHAKE_TIMEOUT_S)
            request.do_handshake()
            request.settimeout(timeout)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            log.warning("DICOM TLS handshake with %s failed: %s", client_address[0], exc)
            self.shutdown_request(request)
            return
        super().process_request_thread(request, client_address)
