"""Who may do what at the DIMSE door (issue 9): the secure default, rights per calling AE,
move destinations, the peer's address, and what the access trail keeps of it."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, build_context
from typer.testing import CliRunner

from twinpacs.cli import app
from twinpacs.config import load_settings
from twinpacs.core.access_trail import TrailFilter, TrailRecord
from twinpacs.dimse import DimseServer
from twinpacs.dimse.access import grants_from
from twinpacs.dimse.uids import (
    PatientRootQueryRetrieveInformationModelFind,
    StorageCommitmentPushModel,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)
from twinpacs.errors import ConfigurationError
from twinpacs.synthetic import write_study

from .conftest import AE_TITLE, HOST, StartServer, association, dcmtk, spec, store_files

NOT_AUTHORIZED = 0x0124
MOVE_DESTINATION_UNKNOWN = 0xA801
WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
CT = "1.2.840.10008.5.1.4.1.1.2"
RIGHTS = {"MODALITY": {"rights": ["store"]}, "VIEWER": {"rights": ["find", "get", "move"], "move_to": ["STORESCP"]},
          "QUERY": {"rights": ["find"]}}


@pytest.fixture(autouse=True)
def secure_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite-wide opener (tests/conftest.py) removed: the door as a fresh site has it."""
    monkeypatch.delenv("TWINPACS_DICOM__ACCEPT_UNKNOWN_AE", raising=False)


@pytest.fixture
def stored(tmp_path: Path) -> list[Path]:
    return write_study(spec(), tmp_path / "study")


def secured(start_server: StartServer, storescp_port: int = 1, **dicom: object) -> DimseServer:
    destinations = {"STORESCP": f"{HOST}:{storescp_port}", "OTHER": f"{HOST}:1"}
    return start_server(destinations, allowed_aes=dicom.pop("allowed_aes", RIGHTS), **dicom)


def trail(server: DimseServer, **wanted: str) -> list[TrailRecord]:
    return server.site.access_trail.entries(TrailFilter(**wanted))  # type: ignore[arg-type]


def study_identifier(study_uid: str, level: str = "STUDY") -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    ds.StudyInstanceUID = study_uid
    return ds


def final_status(responses: object) -> int:
    last = None
    for status, _ in responses:  # type: ignore[attr-defined]
        last = status
    assert last is not None
    return int(last.Status)


# -- the secure default --------------------------------------------------------------------

@pytest.mark.parametrize("tool", ["echoscu", "storescu", "findscu", "getscu", "movescu"])
def test_an_unknown_ae_is_rejected_by_every_dcmtk_client(
        start_server: StartServer, stored: list[Path], tool: str) -> None:
    server = secured(start_server)
    options = {"echoscu": [], "storescu": [], "findscu": ["-S", "-k", "QueryRetrieveLevel=STUDY"],
               "getscu": ["-k", "QueryRetrieveLevel=STUDY"],
               "movescu": ["-aem", "STORESCP", "-k", "QueryRetrieveLevel=STUDY"]}[tool]
    files = stored[:1] if tool == "storescu" else []
    result = dcmtk(tool, *options, "-aet", "INTRUDER", "-aec", AE_TITLE, HOST, server.port, *files, check=False)
    assert result.returncode != 0
    assert "Rejected" in result.stdout + result.stderr
    refusals = trail(server, who="INTRUDER")
    assert [(r.entry.action, r.entry.outcome, r.entry.door) for r in refusals] == [("login", "refused", "dicom")]
    assert refusals[0].entry.principal.address == HOST


def test_pynetdicom_sees_a_permanent_rejection_naming_the_calling_ae(start_server: StartServer) -> None:
    server = secured(start_server)
    assoc = AE(ae_title="INTRUDER").associate(HOST, server.port, contexts=[build_context(Verification)],
                                              ae_title=AE_TITLE)
    assert assoc.is_rejected
    rj = assoc.acceptor.primitive
    assert (rj.result, rj.result_source, rj.diagnostic) == (0x01, 0x01, 0x03)


def test_a_fresh_site_admits_nobody_and_says_so(start_server: StartServer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="twinpacs.dimse.access"):
        server = start_server()
    assert "no calling AE is listed" in caplog.text
    assert dcmtk("echoscu", "-aec", AE_TITLE, HOST, server.port, check=False).returncode != 0


def test_opening_the_door_is_explicit_and_logged_at_every_start(
        start_server: StartServer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="twinpacs.dimse.access"):
        server = start_server(accept_unknown_ae=True)
    assert "DICOM door open: any calling AE may store, query and retrieve" in caplog.text
    dcmtk("echoscu", "-aet", "ANYONE", "-aec", AE_TITLE, HOST, server.port)


# -- rights per AE -------------------------------------------------------------------------

def test_every_admitted_ae_may_echo(start_server: StartServer) -> None:
    server = secured(start_server)
    for ae in RIGHTS:
        dcmtk("echoscu", "-aet", ae, "-aec", AE_TITLE, HOST, server.port)


def test_a_known_ae_is_refused_each_service_outside_its_rights(
        start_server: StartServer, stored: list[Path]) -> None:
    server = secured(start_server)
    store_files(server, stored)
    study = _study_uid(stored[0])
    # MODALITY may only store: find (also the worklist), get, move are refused with 0x0124.
    contexts = [build_context(StudyRootQueryRetrieveInformationModelFind),
                build_context(StudyRootQueryRetrieveInformationModelGet),
                build_context(StudyRootQueryRetrieveInformationModelMove), build_context(WORKLIST_FIND),
                build_context(StorageCommitmentPushModel)]
    with association(server.port, contexts, ae_title="MODALITY") as assoc:
        assert final_status(assoc.send_c_find(study_identifier(study), StudyRootQueryRetrieveInformationModelFind)) \
            == NOT_AUTHORIZED
        worklist = Dataset()
        worklist.PatientID = ""
        assert final_status(assoc.send_c_find(worklist, WORKLIST_FIND)) == NOT_AUTHORIZED
        assert final_status(assoc.send_c_get(study_identifier(study), StudyRootQueryRetrieveInformationModelGet)) \
            == NOT_AUTHORIZED
        assert final_status(assoc.send_c_move(study_identifier(study), "STORESCP",
                                              StudyRootQueryRetrieveInformationModelMove)) == NOT_AUTHORIZED
    # QUERY may only find: store and storage commitment are refused with 0x0124.
    with association(server.port, [build_context(CT), build_context(StorageCommitmentPushModel),
                                   build_context(PatientRootQueryRetrieveInformationModelFind)],
                     ae_title="QUERY") as assoc:
        status = assoc.send_c_store(dcmread(stored[1]))
        assert status.Status == NOT_AUTHORIZED
        action = Dataset()
        action.TransactionUID = "1.2.3.4"
        action.ReferencedSOPSequence = []
        status, _ = assoc.send_n_action(action, 1, StorageCommitmentPushModel, "1.2.840.10008.1.20.1.1")
        assert status.Status == NOT_AUTHORIZED
    refused = [(r.entry.principal.name, r.entry.action) for r in trail(server) if r.entry.outcome == "refused"]
    assert sorted(refused) == sorted([("MODALITY", "query"), ("MODALITY", "query"), ("MODALITY", "retrieve"),
                                      ("MODALITY", "retrieve"), ("QUERY", "store"), ("QUERY", "store")])


def _study_uid(path: Path) -> str:
    return str(dcmread(path, stop_before_pixels=True).StudyInstanceUID)


def test_dcmtk_clients_outside_their_rights_are_refused(start_server: StartServer, stored: list[Path]) -> None:
    server = secured(start_server)
    result = dcmtk("storescu", "-v", "-aet", "VIEWER", "-aec", AE_TITLE, HOST, server.port, stored[0], check=False)
    assert result.returncode != 0
    assert "Received Store Response (Unknown Status: 0x124)" in result.stdout + result.stderr  # DCMTK 3.6.7 wording
    assert server.site.archive.figures()["instances"] == 0


# -- C-MOVE destinations -------------------------------------------------------------------

def test_moves_only_to_configured_destinations_and_the_aes_own(
        start_server: StartServer, stored: list[Path], storescp: tuple[str, int, Path]) -> None:
    ae_title, port, folder = storescp
    server = secured(start_server, port, allowed_aes={**RIGHTS, "ANYWHERE": {"rights": ["move"]},
                                                       ae_title: {"rights": ["move"]}})
    store_files(server, stored)
    study = _study_uid(stored[0])
    contexts = [build_context(StudyRootQueryRetrieveInformationModelMove)]
    model = StudyRootQueryRetrieveInformationModelMove
    with association(server.port, contexts, ae_title="VIEWER") as assoc:
        assert final_status(assoc.send_c_move(study_identifier(study), "NOWHERE", model)) == MOVE_DESTINATION_UNKNOWN
        assert final_status(assoc.send_c_move(study_identifier(study), "OTHER", model)) == MOVE_DESTINATION_UNKNOWN
        assert final_status(assoc.send_c_move(study_identifier(study), ae_title, model)) == 0x0000
    with association(server.port, contexts, ae_title="ANYWHERE") as assoc:  # no list: any configured one
        assert final_status(assoc.send_c_move(study_identifier(study), "NOWHERE", model)) == MOVE_DESTINATION_UNKNOWN
    assert len(list(folder.iterdir())) == len(stored)  # storescp keeps one file per object
    moves = [(r.entry.principal.name, r.entry.outcome, r.entry.detail) for r in trail(server, action="export")]
    assert trail(server, action="retrieve") == []  # so far every move went to another AE than its caller
    with association(server.port, contexts, ae_title=ae_title) as assoc:  # to itself: a retrieval
        assert final_status(assoc.send_c_move(study_identifier(study), ae_title, model)) == 0x0000
    [own] = trail(server, action="retrieve")
    assert (own.entry.principal.name, own.entry.outcome) == (ae_title, "success")
    assert ("VIEWER", "success", f"C-MOVE to STORESCP STUDY StudyInstanceUID={study}: {len(stored)} object(s)") in moves
    refused = [detail for who, outcome, detail in moves if outcome == "refused"]
    assert sorted(refused) == ["C-MOVE refused: 'NOWHERE' is not a configured destination",
                               "C-MOVE refused: 'NOWHERE' is not a configured destination",
                               "C-MOVE refused: 'OTHER' is not among this AE's destinations"]


def test_a_move_to_a_destination_outside_the_configuration_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="move_to names ELSEWHERE, not in move_destinations"):
        load_settings(overrides={"site": {"data_dir": tmp_path}, "dicom": {
            "move_destinations": {"WS": "127.0.0.1:104"}, "allowed_aes": {"V": {"move_to": ["ELSEWHERE"]}}}})


# -- the peer's address --------------------------------------------------------------------

def test_an_ae_calling_from_another_address_is_rejected(start_server: StartServer) -> None:
    server = secured(start_server, allowed_aes={"MODALITY": {"host": "192.0.2.7"}, "LOCAL": {"host": HOST}})
    result = dcmtk("echoscu", "-aet", "MODALITY", "-aec", AE_TITLE, HOST, server.port, check=False)
    assert result.returncode != 0
    dcmtk("echoscu", "-aet", "LOCAL", "-aec", AE_TITLE, HOST, server.port)
    [refusal] = trail(server, who="MODALITY")
    assert refusal.entry.detail == "association refused: calling AE comes from another address"


# -- what a permitted AE does, and what the trail keeps -------------------------------------

def test_a_permitted_ae_stores_queries_and_retrieves_with_one_trail_entry_each(
        start_server: StartServer, tmp_path: Path) -> None:
    server = secured(start_server, allowed_aes={"MODALITY": {"rights": ["store"]}, "VIEWER": {}})
    first, second = write_study(spec(), tmp_path / "one"), write_study(spec(seed=3, patient_id="P2"), tmp_path / "two")
    dcmtk("storescu", "-aet", "MODALITY", "-aec", AE_TITLE, HOST, server.port, *first, *second)
    assert server.site.archive.figures()["instances"] == len(first) + len(second)
    study = _study_uid(first[0])
    dcmtk("findscu", "-S", "-aet", "VIEWER", "-aec", AE_TITLE, "-k", "QueryRetrieveLevel=STUDY",
          "-k", f"StudyInstanceUID={study}", "-k", "PatientID", HOST, server.port)
    got = tmp_path / "got"
    got.mkdir()
    dcmtk("getscu", "-aet", "VIEWER", "-aec", AE_TITLE, "-od", got, "-k", "QueryRetrieveLevel=STUDY",
          "-k", f"StudyInstanceUID={study}", HOST, server.port)
    assert len(list(got.iterdir())) == len(first)
    deadline = time.monotonic() + 5  # the store entries are written when the connection closes
    while len(trail(server, action="store")) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    stores = sorted((r.entry.patient_id, r.entry.detail) for r in trail(server, action="store"))
    assert stores == sorted([(spec().patient_id, f"C-STORE: {len(first)} instance(s)"),
                             ("P2", f"C-STORE: {len(second)} instance(s)")])
    [query] = trail(server, action="query")
    assert (query.entry.principal.name, query.entry.outcome, query.entry.study_uid) == ("VIEWER", "success", study)
    assert query.entry.detail == f"C-FIND STUDY StudyInstanceUID={study}: 1 match(es)"
    [get] = trail(server, action="retrieve")
    assert get.entry.detail == f"C-GET STUDY StudyInstanceUID={study}: {len(first)} object(s)"
    assert {r.entry.principal.kind for r in trail(server)} == {"ae"}


def test_stores_on_an_aborted_association_are_recorded_too(start_server: StartServer, stored: list[Path]) -> None:
    server = secured(start_server)
    with association(server.port, [build_context(CT)], ae_title="MODALITY") as assoc:
        for path in stored:
            assert assoc.send_c_store(dcmread(path)).Status == 0
        assoc.abort()
    deadline = time.monotonic() + 5
    while not trail(server, action="store") and time.monotonic() < deadline:
        time.sleep(0.02)
    [entry] = trail(server, action="store")
    assert (entry.entry.study_uid, entry.entry.detail) == (_study_uid(stored[0]), f"C-STORE: {len(stored)} instance(s)")


# -- the command line ----------------------------------------------------------------------

@pytest.mark.parametrize("value", ["X=store,delete", "BAD\\AE", "X=", "=store"])
def test_serve_refuses_a_malformed_allow_ae_in_one_line(value: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--data-dir", str(tmp_path), "--allow-ae", value])
    assert result.exit_code == 2
    assert "--allow-ae" in result.output and "Traceback" not in result.output


def test_dimse_peers_and_move_prefetch_sources_are_admitted_without_listing(tmp_path: Path) -> None:
    settings = load_settings(overrides={"site": {"data_dir": tmp_path}, "peers": [
        {"name": "VENDOR", "kind": "dimse", "ae_title": "VENDOR_PACS", "port": 4242}],
        "prefetch": {"sources": [{"name": "OLD", "ae_title": "OLD_PACS", "port": 104},
                                 {"name": "GETTER", "ae_title": "GET_PACS", "port": 104, "retrieve": "get"}]},
        "dicom": {"allowed_aes": {"GET_PACS": {"rights": ["find"]}}}}, environment=False)
    grants = grants_from(settings)
    assert grants["VENDOR_PACS"].rights == frozenset()  # its Storage Commitment reports, and echo
    assert grants["OLD_PACS"].rights == {"store"}  # the C-STOREs of the C-MOVEs we ask of it
    assert grants["GET_PACS"].rights == {"find"}  # listed: exactly as listed
