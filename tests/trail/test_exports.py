"""The trail read back: GET /api/access-trail as JSON, JSON lines and ATNA XML (PS3.15 A.5.1),
and `twinpacs audit-trail` with its filters and formats."""

from __future__ import annotations

import getpass
import json
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from twinpacs.app import Site
from twinpacs.core.access_trail import AccessEntry
from twinpacs.core.principal import Principal
from twinpacs.index.access_trail import SqlAccessTrail
from twinpacs.web import create_app
from tests.backend import backend_env
from tests.cli_run import run_cli
from tests.trail.conftest import entries

ALICE = Principal("alice", "radiologist", "user", "10.0.0.7")
CT = Principal("CT1", "dicom", "ae", "10.0.0.9")
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
WRITTEN = [  # minutes after T0, who, action, outcome, door, patient, study
    (0, ALICE, "login", "success", "http", "", ""),
    (10, ALICE, "query", "success", "http", "PID1", ""),
    (20, ALICE, "view", "success", "http", "PID1", "1.2.3"),
    (30, CT, "retrieve", "refused", "dicom", "PID2", "4.5.6"),
    (40, ALICE, "export", "success", "http", "PID2", "4.5.6"),
]


def fill(site: Site) -> None:
    clock = {"now": T0}
    trail = SqlAccessTrail(site.index.db, site.name, lambda: clock["now"])
    for minutes, who, action, outcome, door, patient, study in WRITTEN:
        clock["now"] = T0 + timedelta(minutes=minutes)
        trail.record(AccessEntry(who, action, outcome, door, patient, study, f"{action} detail"))  # type: ignore[arg-type]
    trail.close()


def check_atna(document: bytes | str, count: int) -> list[ET.Element]:
    """Well-formed, one AuditMessage per entry, each with the elements PS3.15 A.5.1 requires."""
    root = ET.fromstring(document)
    assert root.tag == "AuditMessages"
    messages = root.findall("AuditMessage")
    assert len(messages) == count
    for message in messages:
        event = message.find("EventIdentification")
        assert event is not None and event.get("EventActionCode") in {"C", "R", "U", "D", "E"}
        assert datetime.fromisoformat(event.get("EventDateTime", "")).tzinfo is not None
        assert event.get("EventOutcomeIndicator") in {"0", "4", "8", "12"}
        event_id = event.find("EventID")
        assert event_id is not None and event_id.get("codeSystemName") == "DCM" and event_id.get("csd-code")
        participant = message.find("ActiveParticipant")
        assert participant is not None and participant.get("UserID") and participant.get("UserIsRequestor") == "true"
        source = message.find("AuditSourceIdentification")
        assert source is not None and source.get("AuditSourceID") == "trail-test"
    return messages


@pytest.mark.anyio
async def test_the_api_in_its_three_formats(site: Site) -> None:
    fill(site)
    transport = httpx.ASGITransport(app=create_app(site))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        listing = (await client.get("/api/access-trail", params={"patient": "PID1"})).json()
        lines = await client.get("/api/access-trail", params={"format": "jsonl"})
        atna = await client.get("/api/access-trail", params={"format": "atna", "action": "retrieve"})
        wrong = await client.get("/api/access-trail", params={"format": "csv"})
        bad_time = await client.get("/api/access-trail", params={"since": "last week"})
    assert [e["action"] for e in listing["entries"]] == ["view", "query"]
    assert listing["entries"][0] == {
        "id": 3, "at": "2026-12-01T08:20:00+00:00", "site": "trail-test", "action": "view", "outcome": "success",
        "door": "http", "principal": "alice", "role": "radiologist", "kind": "user", "address": "10.0.0.7",
        "patient_id": "PID1", "study_uid": "1.2.3", "detail": "view detail"}

    assert lines.headers["content-type"].startswith("application/x-ndjson")
    objects = [json.loads(line) for line in lines.text.splitlines()]
    assert len(objects) == 5 + 1 and lines.text.endswith("\n")  # the listing read before is an access too
    assert objects[-1]["action"] == "login"

    assert atna.headers["content-type"].startswith("application/xml")
    (message,) = check_atna(atna.content, 1)
    event = message.find("EventIdentification")
    assert event is not None and event.get("EventOutcomeIndicator") == "4"  # refused
    assert message.find("EventIdentification/EventID").get("csd-code") == "110103"  # type: ignore[union-attr]
    participant = message.find("ActiveParticipant")
    assert participant is not None and participant.get("UserID") == "CT1"
    assert participant.get("NetworkAccessPointID") == "10.0.0.9" and participant.get("NetworkAccessPointTypeCode") == "2"
    objects_by_role = {o.get("ParticipantObjectTypeCodeRole"): o for o in message.findall("ParticipantObjectIdentification")}
    assert objects_by_role["1"].get("ParticipantObjectID") == "PID2"  # the patient
    assert objects_by_role["3"].get("ParticipantObjectID") == "4.5.6"  # the study
    assert objects_by_role["3"].find("ParticipantObjectIDTypeCode").get("csd-code") == "110180"  # type: ignore[union-attr]

    assert wrong.status_code == 400 and "csv" in wrong.json()["error"]
    assert bad_time.status_code == 400 and "ISO 8601" in bad_time.json()["error"]
    reads = [r for r in entries(site) if r.entry.detail.startswith("GET /api/access-trail")]
    assert len(reads) == 5 and all(r.entry.action == "query" for r in reads)


def test_the_command_filters_and_formats(site: Site, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    fill(site)
    for key, value in backend_env(site.settings.site.data_dir).items():
        monkeypatch.setenv(key, value)
    data_dir = str(site.settings.site.data_dir)

    def jsonl(*options: str) -> list[dict[str, str]]:
        code, out, err = run_cli(capsys, "audit-trail", "--data-dir", data_dir, "--format", "jsonl", *options)
        assert code == 0, err
        return [json.loads(line) for line in out.splitlines()]

    def actions(*options: str) -> list[str]:
        return [e["action"] for e in jsonl(*options) if e["door"] != "cli"]

    assert actions("--patient", "PID2") == ["export", "retrieve"]
    assert actions("--study", "1.2.3") == ["view"]
    assert actions("--who", "CT1") == ["retrieve"]
    assert actions("--action", "login") == ["login"]
    assert actions("--since", "2026-12-01T08:10:00", "--until", "2026-12-01T09:35:00+01:00") == [
        "retrieve", "view", "query"]
    assert actions("--until", "2026-12-02", "--limit", "2") == ["export", "retrieve"]

    code, out, _ = run_cli(capsys, "audit-trail", "--data-dir", data_dir, "--format", "atna", "--who", "alice")
    assert code == 0
    check_atna(out, 4)
    code, out, _ = run_cli(capsys, "audit-trail", "--data-dir", data_dir, "--action", "view")
    assert code == 0 and "1 access trail entry" in out and "alice" in out

    code, _, err = run_cli(capsys, "audit-trail", "--data-dir", data_dir, "--since", "soon")
    assert code == 2 and "ISO 8601" in err
    code, _, err = run_cli(capsys, "audit-trail", "--data-dir", data_dir, "--format", "csv")
    assert code == 2
    # each of the eight successful reads above is one entry of its own, by the OS user, door cli
    reads = [e for e in jsonl("--action", "query") if e["door"] == "cli"]
    assert len(reads) == 8 and reads[0]["kind"] == "local" and reads[0]["role"] == "operator"
    assert reads[0]["detail"] == "twinpacs audit-trail --action view"


def test_a_local_find_is_one_query_entry(site: Site, study_uid: str, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in backend_env(site.settings.site.data_dir).items():
        monkeypatch.setenv(key, value)
    code, out, err = run_cli(capsys, "find", "PatientID=TRAIL01", "--data-dir", str(site.settings.site.data_dir))
    assert code == 0, err
    (found,) = entries(site)
    e = found.entry
    assert e.principal == Principal(getpass.getuser(), "operator", "local")
    assert (e.action, e.outcome, e.door, e.patient_id) == ("query", "success", "cli", "TRAIL01")
    assert e.detail == "twinpacs find STUDY PatientID=TRAIL01: 1 result(s)"
