"""/api/notices, /api/operator-log and /api/incidents/drafts over HTTP, with the one error shape."""

from __future__ import annotations

import httpx
import pytest

from tests.notices.conftest import Receiver
from tests.web.conftest import assert_error
from twinpacs.announcements import Announcements
from twinpacs.app import Site

pytestmark = pytest.mark.anyio

STUDY = {"StudyInstanceUID": "1.2.3", "PatientID": "P1", "PatientName": "Doe^Jane",
         "AccessionNumber": "ACC1", "StudyDate": "20260101", "instances_missing": 3}


async def test_round_trip(client: httpx.AsyncClient, receiver: Receiver) -> None:
    posted = await client.post("/api/notices", json={
        "title": "Site B is catching up", "body": "Images may be missing at B", "severity": "critical",
        "studies": [STUDY], "posted_by": "alice"})
    assert posted.status_code == 201, posted.text
    notice = posted.json()
    assert notice["active"] and notice["cleared_at"] is None and notice["studies"] == [STUDY]
    assert notice["posted_by"] == "alice" and notice["severity"] == "critical"

    listed = (await client.get("/api/notices")).json()["notices"]
    assert [n["id"] for n in listed] == [notice["id"]] and listed[0] == notice

    cleared = (await client.post(f"/api/notices/{notice['id']}/clear", json={"cleared_by": "bob"})).json()
    assert cleared["cleared_at"] and not cleared["active"]
    assert (await client.get("/api/notices")).json()["notices"] == []
    assert [n["id"] for n in (await client.get("/api/notices?all=true")).json()["notices"]] == [notice["id"]]
    again = await client.post(f"/api/notices/{notice['id']}/clear")  # clearing twice is harmless
    assert again.status_code == 200 and again.json()["cleared_at"] == cleared["cleared_at"]

    log = (await client.get("/api/operator-log")).json()["entries"]
    assert [(e["actor"], e["action"]) for e in log] == [("bob", "notice.clear"), ("alice", "notice.post")]
    events = receiver.wait_for(2)
    assert sorted(e["event"] for e in events) == ["notice.cleared", "notice.posted"]


async def test_defaults(client: httpx.AsyncClient) -> None:
    notice = (await client.post("/api/notices", json={"title": "Planned maintenance"})).json()
    assert notice["severity"] == "warning" and notice["body"] == "" and notice["studies"] == []
    assert notice["posted_by"] == "api"


@pytest.mark.parametrize("body", [
    {"title": ""}, {"title": "x", "severity": "apocalyptic"}, {"title": "x", "studies": "1.2.3"},
    {"title": "x", "studies": ["1.2.3"]}, {"title": 5}, {"title": "x" * 300}, [1, 2],
])
async def test_bad_posts_are_400(client: httpx.AsyncClient, body: object) -> None:
    assert_error(await client.post("/api/notices", json=body), 400)


async def test_errors_have_the_shape(client: httpx.AsyncClient) -> None:
    assert_error(await client.post("/api/notices", content=b"{not json"), 400)
    assert "999" in assert_error(await client.post("/api/notices/999/clear"), 404)
    assert_error(await client.get("/api/notices?all=maybe"), 400)
    assert_error(await client.get("/api/operator-log?limit=0"), 400)
    assert_error(await client.delete("/api/notices"), 405)


async def test_incident_drafts_and_log_filters(client: httpx.AsyncClient, site: Site) -> None:
    ann = Announcements.from_site(site)
    ann.operator_log.record("carol", "failover.force", "surgery at 12:00", {"to": "B", "missing_studies": [STUDY]})
    ann.operator_log.record("carol", "other", "")
    draft = ann.incidents.draft("A", "Forced failover", "2 studies missing", {"reason": "surgery"})
    drafts = (await client.get("/api/incidents/drafts")).json()["drafts"]
    assert drafts == [draft.as_dict()] and drafts[0]["details"] == {"reason": "surgery"}
    entries = (await client.get("/api/operator-log?action=failover.force")).json()["entries"]
    assert len(entries) == 1 and entries[0]["details"]["missing_studies"] == [STUDY]
    assert entries[0]["reason"] == "surgery at 12:00" and entries[0]["at"].endswith("+00:00")
    assert len((await client.get("/api/operator-log?limit=1")).json()["entries"]) == 1
