"""DICOM TLS on the associations twinpacs opens itself (issue 9): C-MOVE sub-associations to a
DCMTK storescp over TLS (which checks twinpacs's client certificate), prefetch from a DIMSE source over TLS; a remote whose certificate
chains to no trusted CA gets nothing. Replication to a DIMSE peer over TLS: tests/replication."""

from __future__ import annotations

import logging
import os
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pynetdicom import build_context
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove

from twinpacs.config import PrefetchSourceSettings, load_settings
from twinpacs.dimse import DimseServer
from twinpacs.dimse.scu import identifier
from twinpacs.dimse.server import STORAGE_TRANSFER_SYNTAXES
from twinpacs.errors import ConfigurationError
from twinpacs.prefetch_sources import make_source
from twinpacs.synthetic import write_study

from .conftest import (
    AE_TITLE,
    HOST,
    SYNTHETIC_SOP_CLASSES,
    Pki,
    StartServer,
    association,
    dcmtk_profile,
    free_port,
    spec,
    store_files,
    wait_listening,
)


@pytest.fixture(autouse=True)
def secure_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWINPACS_DICOM__ACCEPT_UNKNOWN_AE", raising=False)


@contextmanager
def tls_storescp(tmp_path: Path, cert: Path, key: Path, ca: Path) -> Iterator[tuple[int, Path]]:
    """DCMTK storescp on TLS only, requiring a client certificate issued by `ca`."""
    port, folder = free_port(), tmp_path / f"storescp-{cert.stem}"
    folder.mkdir()
    config = dcmtk_profile(tmp_path / "storescp.cfg", list(SYNTHETIC_SOP_CLASSES), STORAGE_TRANSFER_SYNTAXES)
    proc = subprocess.Popen(["storescp", "-aet", "STORESCP", "-xf", str(config), "Twinpacs", "+tls", str(key),
                             str(cert), "+cf", str(ca), "-rc", "-od", str(folder), str(port)],
                            env={**os.environ, "TCP_NODELAY": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port)
        yield port, folder
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def mover_site(start_server: StartServer, pki: Pki, port: int, tls_destination: bool = True) -> DimseServer:
    """A site with a TLS listener of its own (the node certificate, which it also shows as a
    client) and STORESCP as a move destination."""
    return start_server(
        destinations={"STORESCP": f"{HOST}:{port}"},
        allowed_aes={"MOVESCU": {"rights": ["move"], "move_to": ["STORESCP"]}},
        tls_cert_file=pki.node_cert, tls_key_file=pki.node_key, tls_ca_file=pki.ca, tls_require_client_cert=True,
        tls_remote_ca_file=pki.ca, tls_destinations=["STORESCP"] if tls_destination else [])


def move(server: DimseServer, study_uid: str, pki: Pki | None = None) -> list[int]:
    """C-MOVE the study to STORESCP (over TLS with `pki`: DCMTK's movescu has no TLS); the statuses."""
    kwargs: dict[str, Any] = {}
    if pki is not None:
        context = ssl.create_default_context(cafile=pki.ca)
        context.load_cert_chain(pki.client_cert, pki.client_key)
        kwargs["tls_args"] = (context, HOST)
    with association(server.port, [build_context(StudyRootQueryRetrieveInformationModelMove)], "MOVESCU",
                     **kwargs) as assoc:
        return [int(status.Status) for status, _ in assoc.send_c_move(
            identifier("STUDY", StudyInstanceUID=study_uid), "STORESCP", StudyRootQueryRetrieveInformationModelMove)]


def stored_study(server: DimseServer, tmp_path: Path) -> tuple[str, int]:
    files = write_study(spec(), tmp_path / f"study-{server.port}")
    store_files(server, files)
    return str(dcmread(files[0], stop_before_pixels=True).StudyInstanceUID), len(files)


def test_c_move_to_a_tls_destination_with_certificates_both_ways(
        start_server: StartServer, pki: Pki, tmp_path: Path) -> None:
    with tls_storescp(tmp_path, pki.server_cert, pki.server_key, pki.ca) as (port, folder):
        server = mover_site(start_server, pki, port)
        study, count = stored_study(server, tmp_path)
        assert move(server, study, pki)[-1] == 0x0000
        assert len(list(folder.iterdir())) == count  # storescp required and checked our certificate


def test_c_move_to_a_destination_whose_certificate_is_not_trusted_sends_nothing(
        start_server: StartServer, pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with tls_storescp(tmp_path, pki.rogue_cert, pki.rogue_key, pki.ca) as (port, folder):
        server = mover_site(start_server, pki, port)
        study, _ = stored_study(server, tmp_path)
        with caplog.at_level(logging.ERROR, logger="pynetdicom"):
            statuses = move(server, study, pki)
        assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
        assert statuses == [0xA801]  # pynetdicom's answer when the sub-association fails
        assert list(folder.iterdir()) == []


def test_c_move_without_tls_to_a_tls_destination_sends_nothing(
        start_server: StartServer, pki: Pki, tmp_path: Path) -> None:
    with tls_storescp(tmp_path, pki.server_cert, pki.server_key, pki.ca) as (port, folder):
        server = mover_site(start_server, pki, port, tls_destination=False)
        study, _ = stored_study(server, tmp_path)
        assert move(server, study, pki) == [0xA801]
        assert list(folder.iterdir()) == []


def source_settings(port: int, tls: bool = True) -> PrefetchSourceSettings:
    return PrefetchSourceSettings(name="pacs", kind="dimse", ae_title=AE_TITLE, host=HOST, port=port,
                                  retrieve="get", tls=tls)


def test_prefetch_from_a_dimse_source_over_tls(start_server: StartServer, pki: Pki, tmp_path: Path) -> None:
    source = start_server(allowed_aes={"TPA": {"rights": ["find", "get"]}},
                          tls_cert_file=pki.server_cert, tls_key_file=pki.server_key, tls_ca_file=pki.ca,
                          tls_require_client_cert=True)
    study, count = stored_study(source, tmp_path)
    here = start_server(tls_cert_file=pki.node_cert, tls_key_file=pki.node_key, tls_remote_ca_file=pki.ca)
    dicom = here.site.settings.dicom
    prefetch = make_source(source_settings(source.port), dicom, "TPA", here.site.archive)
    try:
        (candidate,) = prefetch.find(spec().patient_id, series_details=False)
        assert candidate.study_uid == study
        prefetch.fetch(candidate)
    finally:
        prefetch.close()
    assert here.site.archive.figures()["instances"] == count


def test_prefetch_source_with_an_untrusted_certificate_is_an_error_naming_tls(
        start_server: StartServer, pki: Pki) -> None:
    source = start_server(allowed_aes={"TPA": {"rights": ["find", "get"]}},
                          tls_cert_file=pki.rogue_cert, tls_key_file=pki.rogue_key)
    here = start_server(tls_remote_ca_file=pki.ca)
    prefetch = make_source(source_settings(source.port), here.site.settings.dicom, "TPA", here.site.archive)
    with pytest.raises(Exception, match=rf"no association with {AE_TITLE}@{HOST}:{source.port} over TLS "
                                        r"\(refused, TLS handshake failed"):
        prefetch.find(spec().patient_id, series_details=False)


# -- configuration -------------------------------------------------------------------------

def dicom_settings(tmp_path: Path, **dicom: object) -> object:
    return load_settings(overrides={"site": {"data_dir": tmp_path}, "dicom": dicom}, environment=False).dicom


def test_a_tls_destination_must_be_a_move_destination(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="tls_destinations names PACS, not in move_destinations"):
        dicom_settings(tmp_path, tls_destinations=["PACS"])


@pytest.mark.parametrize(("section", "entry", "message"), [
    ("peers", {"name": "B", "dicomweb_url": "http://127.0.0.1:1/dicom-web", "tls": True},
     "peer B: tls is for DIMSE peers"),
    ("prefetch", {"sources": [{"name": "w", "kind": "dicomweb", "dicomweb_url": "http://127.0.0.1:1", "tls": True}]},
     "prefetch source w: tls is for DIMSE sources"),
])
def test_tls_on_an_http_remote_is_refused_with_the_way_to_do_it(
        tmp_path: Path, section: str, entry: dict[str, object], message: str) -> None:
    value = [entry] if section == "peers" else entry
    with pytest.raises(ConfigurationError, match=message):
        load_settings(overrides={"site": {"data_dir": tmp_path}, section: value}, environment=False)


def test_an_unreadable_remote_ca_file_stops_the_start(start_server: StartServer, tmp_path: Path) -> None:
    missing = tmp_path / "gone.pem"
    with pytest.raises(ConfigurationError, match=f"dicom.tls_remote_ca_file: cannot read {missing}"):
        start_server(destinations={"PACS": f"{HOST}:104"}, tls_destinations=["PACS"], tls_remote_ca_file=missing)


def test_a_tls_destination_that_requires_a_client_certificate_refuses_a_site_without_one(
        start_server: StartServer, pki: Pki, tmp_path: Path) -> None:
    with tls_storescp(tmp_path, pki.server_cert, pki.server_key, pki.ca) as (port, folder):
        server = start_server(destinations={"STORESCP": f"{HOST}:{port}"}, tls_destinations=["STORESCP"],
                              tls_remote_ca_file=pki.ca, allowed_aes={"MOVESCU": {"rights": ["move"]}})
        study, _ = stored_study(server, tmp_path)
        assert move(server, study) == [0xA801]
        assert list(folder.iterdir()) == []
