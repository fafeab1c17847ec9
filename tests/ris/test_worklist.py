"""The Modality Worklist SCP with DCMTK's findscu -W, and the round trip it exists for: the
modality pulls the order, stores its images with storescu, the referral is beside them."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from pydicom.dataset import Dataset
from pynetdicom import build_context

from twinpacs.app import Site
from twinpacs.core.reconcile import study_uid_for
from twinpacs.core.ris import Code, Patient, Priority
from twinpacs.dimse import DimseServer, start_dimse
from twinpacs.dimse.handlers import ModalityWorklistInformationFind
from twinpacs.synthetic import StudySpec
from tests.dimse.conftest import HOST, association, dcmtk
from tests.ris.conftest import AE_TITLE, findscu, order, study_files

pytestmark = pytest.mark.anyio

SPS = "ScheduledProcedureStepSequence"
JANE = Patient("PID1", "HOSP", "Doe^Jane", "19800101", "F")


def place_orders(site: Site) -> None:
    """Three scheduled orders and a cancelled one. ACC3 is at 23:30 UTC on the 9th: 00:30 on
    the 10th in the hospital's zone (Europe/Oslo), which is what the worklist speaks."""
    ris = site.ris
    ris.place_order(order("P1", "ACC1", JANE, priority=Priority.STAT))
    ris.place_order(order("P2", "ACC2", Patient("PID2", "HOSP", "Roe^Richard", "19700505", "M"),
                          procedure=Code("MRHEAD", "L", "MR head"), modality="MR", station_ae="MR1",
                          scheduled_at=datetime(2026, 3, 11, 7, 0, tzinfo=timezone.utc), priority=Priority.ASAP))
    ris.place_order(order("P3", "ACC3", Patient("PID3", "HOSP", "DOE^JOHN"), procedure=Code("XR99", "L", "odd one"),
                          scheduled_at=datetime(2026, 3, 9, 23, 30, tzinfo=timezone.utc)))
    ris.place_order(order("P4", "ACC4", Patient("PID4", "HOSP", "Poe^Paul")))
    ris.cancel_order("P4")


def sps(**keys: str) -> list[str]:
    return [f"{SPS}[0].{k}" + (f"={v}" if v else "") for k, v in keys.items()]


async def test_modality_pulls_the_order_stores_the_images_and_the_referral_is_there(
        site: Site, server: DimseServer, client: httpx.AsyncClient, tmp_path: Path) -> None:
    place_orders(site)
    (item,) = findscu(server.port, tmp_path / "wl",
                      *sps(ScheduledStationAETitle="CT1", Modality="CT", ScheduledProcedureStepStartDate="20260310",
                           ScheduledProcedureStepStartTime="", ScheduledProcedureStepID="",
                           ScheduledProcedureStepStatus=""),
                      "AccessionNumber=ACC1", "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate",
                      "PatientSex", "StudyInstanceUID", "RequestedProcedurePriority", "RequestedProcedureCodeSequence",
                      "RequestedProcedureDescription", "ReasonForTheRequestedProcedure", "ReferringPhysicianName")
    assert (item.PatientName, item.PatientID, item.IssuerOfPatientID) == ("Doe^Jane", "PID1", "HOSP")
    assert (item.PatientBirthDate, item.PatientSex, item.AccessionNumber) == ("19800101", "F", "ACC1")
    assert item.StudyInstanceUID == study_uid_for("ACC1") and item.StudyInstanceUID.startswith("2.25.")
    assert item.RequestedProcedurePriority == "STAT"
    (code,) = item.RequestedProcedureCodeSequence
    assert (code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning) == ("24627-2", "LN", "CT Chest")
    assert item.RequestedProcedureDescription == "CT Chest"
    assert (item.ReasonForTheRequestedProcedure, item.ReferringPhysicianName) == ("r/o pulmonary embolism", "Ward^Wendy")
    (step,) = item[SPS].value
    assert (step.ScheduledProcedureStepStartDate, step.ScheduledProcedureStepStartTime) == ("20260310", "093000")
    assert (step.ScheduledStationAETitle, step.Modality, step.ScheduledProcedureStepStatus) == ("CT1", "CT", "SCHEDULED")
    assert step.ScheduledProcedureStepID == "ACC1"

    # The modality acquires with what the worklist gave it, and sends the images.
    files = study_files(tmp_path / "acquired", StudySpec(patient_id="X", seed=11),
                        StudyInstanceUID=item.StudyInstanceUID, AccessionNumber=item.AccessionNumber,
                        PatientID=item.PatientID, PatientName=str(item.PatientName), IssuerOfPatientID="HOSP")
    dcmtk("storescu", "-aec", AE_TITLE, HOST, server.port, *files)

    response = await client.get(f"/api/studies/{item.StudyInstanceUID}/referral")
    assert response.status_code == 200, response.text
    referral = response.json()
    assert {k: referral[k] for k in ("accession_number", "reason", "clinical_info", "referring_physician", "priority",
                                      "order_status", "placer_number", "filler_number", "patient_matches")} == {
        "accession_number": "ACC1", "reason": "r/o pulmonary embolism", "clinical_info": "dyspnoea",
        "referring_physician": "Ward^Wendy", "priority": "STAT", "order_status": "scheduled",
        "placer_number": "P1", "filler_number": "F-P1", "patient_matches": True}
    assert referral["procedure"] == {"local": {"code": "CTTHOR", "scheme": "L", "text": "CT thorax"},
                                     "mapped": {"code": "24627-2", "scheme": "LN", "meaning": "CT Chest"}}
    assert referral["scheduled_at"] == "2026-03-10T08:30:00+00:00"
    assert referral["patient"]["id"] == "PID1" and referral["patient"]["name"] == "Doe^Jane"


MATCHING = {
    "station and local date": (sps(ScheduledStationAETitle="CT1", ScheduledProcedureStepStartDate="20260310"),
                               {"ACC1", "ACC3"}),
    "modality": (sps(Modality="MR"), {"ACC2"}),
    "date range": (sps(ScheduledProcedureStepStartDate="20260311-20260312"), {"ACC2"}),
    "open date range": (sps(ScheduledProcedureStepStartDate="-20260309"), set()),
    "name wildcard, any case": (["PatientName=doe*"], {"ACC1", "ACC3"}),
    "patient id": (["PatientID=PID2"], {"ACC2"}),
    "accession wildcard": (["AccessionNumber=ACC?"], {"ACC1", "ACC2", "ACC3"}),
    "status": (sps(ScheduledProcedureStepStatus="SCHEDULED", Modality="CT"), {"ACC1", "ACC3"}),
    "universal": (sps(Modality=""), {"ACC1", "ACC2", "ACC3"}),
}


def test_matching_keys_and_cancelled_orders(site: Site, server: DimseServer, tmp_path: Path) -> None:
    place_orders(site)
    for n, (case, (keys, expected)) in enumerate(MATCHING.items()):
        found = findscu(server.port, tmp_path / f"case{n}", "AccessionNumber", *keys)
        assert {ds.AccessionNumber for ds in found} == expected, case


def test_only_requested_keys_and_the_mapped_values(site: Site, server: DimseServer, tmp_path: Path) -> None:
    place_orders(site)
    found = findscu(server.port, tmp_path / "rsp", "PatientID", "RequestedProcedurePriority",
                    "RequestedProcedureCodeSequence", f"{SPS}[0].Modality")
    by_patient = {ds.PatientID: ds for ds in found}
    assert {p: ds.RequestedProcedurePriority for p, ds in by_patient.items()} == {
        "PID1": "STAT", "PID2": "HIGH", "PID3": "ROUTINE"}
    assert len(by_patient["PID3"].RequestedProcedureCodeSequence) == 0  # unmapped: no code sent
    assert by_patient["PID2"].RequestedProcedureCodeSequence[0].CodeValue == "24590-2"
    for ds in found:
        assert {e.keyword for e in ds} == {"SpecificCharacterSet", "PatientID", "RequestedProcedurePriority",
                                           "RequestedProcedureCodeSequence", SPS}
        assert [e.keyword for e in ds[SPS].value[0]] == ["Modality"]


def _worklist_find(port: int, identifier: Dataset) -> list[int]:
    with association(port, [build_context(ModalityWorklistInformationFind)]) as assoc:
        return [int(status.Status) for status, _ in assoc.send_c_find(identifier, ModalityWorklistInformationFind)]


def test_bad_identifier_is_a_failure_status(site: Site, server: DimseServer) -> None:
    place_orders(site)
    bad_date = Dataset()
    bad_date.PatientID = ""
    step = Dataset()
    with pytest.warns(UserWarning, match="Invalid value for VR DA"):
        step.ScheduledProcedureStepStartDate = "yesterday"
    bad_date.ScheduledProcedureStepSequence = [step]
    assert _worklist_find(server.port, bad_date) == [0xA900]
    two_steps = Dataset()
    two_steps.ScheduledProcedureStepSequence = [Dataset(), Dataset()]
    assert _worklist_find(server.port, two_steps) == [0xA900]
    fine = Dataset()
    fine.AccessionNumber = "ACC2"
    assert _worklist_find(server.port, fine) == [0xFF00, 0x0000]


def test_worklist_stops_at_the_maximum_with_out_of_resources(site: Site) -> None:
    """limits.max_query_results caps the worklist as it caps C-FIND: a modality sees that its list
    is incomplete (0xA700) rather than a short list that looks whole."""
    place_orders(site)  # three orders stand scheduled (P4 is cancelled)
    site.settings.limits.max_query_results = 2
    server = start_dimse(site)
    try:
        assert _worklist_find(server.port, Dataset()) == [0xFF00, 0xFF00, 0xA700]
        site.settings.limits.max_query_results = 3
    finally:
        server.shutdown()
    server = start_dimse(site)
    try:
        assert _worklist_find(server.port, Dataset()) == [0xFF00, 0xFF00, 0xFF00, 0x0000]
    finally:
        server.shutdown()
