"""Escalation to a real HTTP receiver on 127.0.0.1: at or above the configured severity, with
the on-call contacts, retried, each delivery's result recorded and shown by the API; and the
review step over HTTP."""

from __future__ import annotations

import httpx
import pytest

from twinpacs.core.event_watch import classification
from twinpacs.core.incidents import DraftSpec, IncidentDraft
from twinpacs.escalation import build_escalator
from twinpacs.incident_watch import raise_draft
from twinpacs.index.incidents import SqlIncidentStore
from twinpacs.web import create_app
from tests.incidents.conftest import FAST, Receiver, Sites, closed_port, wait_for
from tests.web.conftest import assert_error

ON_CALL = [{"name": "PACS on call", "role": "PACS administrator", "phone": "+46 8 123 45", "email": "pacs@example.org"}]


def spec(severity: str, condition: str = "unretrievable") -> DraftSpec:
    return DraftSpec(condition, f"A {severity} event", "what happened", {"what": "test", "figures": {"n": 1}},
                     classification(["M.output_none"], "noticeable_no_harm", [10], "test"), severity)


def settled(store: SqlIncidentStore, draft: IncidentDraft, receivers: int = 1) -> IncidentDraft:
    def done() -> IncidentDraft | None:
        now = store.get(draft.id)
        assert now is not None
        return now if len(now.escalations) == receivers and all(e.state != "sending" for e in now.escalations) else None
    return wait_for(done, what="the deliveries settled")


def test_due_drafts_are_escalated_with_the_on_call_contacts(sites: Sites, receiver: Receiver) -> None:
    a = sites.build(incidents={"escalation_webhooks": [receiver.url], "on_call": ON_CALL, "escalate_from": "warning"})
    escalator = build_escalator(a, policy=FAST)
    draft, created = raise_draft(a, spec("critical"), escalator)
    assert created
    payload = receiver.wait_for(1)[0]
    assert payload == {"event": "incident.escalated", "site": "A", "draft": draft.as_dict(), "on_call": ON_CALL}
    recorded = settled(SqlIncidentStore(a.index.db), draft)
    (delivery,) = recorded.escalations
    assert (delivery.state, delivery.attempts, delivery.last_error) == ("delivered", 1, "")
    assert delivery.receiver == f"http://127.0.0.1:{receiver.url.split(':')[2].split('/')[0]}/…"
    # The same condition while its draft is open: no new draft, nothing sent again.
    again, created = raise_draft(a, spec("critical"), escalator)
    assert not created and again.id == draft.id and escalator.wait(5) and len(receiver.requests) == 1


def test_below_the_configured_severity_nothing_is_sent(sites: Sites, receiver: Receiver) -> None:
    a = sites.build(incidents={"escalation_webhooks": [receiver.url], "escalate_from": "critical"})
    escalator = build_escalator(a, policy=FAST)
    draft, _ = raise_draft(a, spec("warning"), escalator)
    assert escalator.wait(5) and receiver.requests == []
    assert SqlIncidentStore(a.index.db).get(draft.id).escalations == ()  # type: ignore[union-attr]


def test_a_failing_receiver_is_retried_and_the_result_recorded(sites: Sites, receiver: Receiver) -> None:
    receiver.fail_first = 2
    a = sites.build(incidents={"escalation_webhooks": [receiver.url]})
    escalator = build_escalator(a, policy=FAST)
    draft, _ = raise_draft(a, spec("critical"), escalator)
    assert escalator.wait(10)
    assert len(receiver.requests) == 3 and len(receiver.delivered) == 1
    (delivery,) = settled(SqlIncidentStore(a.index.db), draft).escalations
    assert (delivery.state, delivery.attempts, delivery.last_error) == ("delivered", 3, "")


def test_a_receiver_that_never_answers_is_recorded_as_failed(sites: Sites, receiver: Receiver) -> None:
    gone = f"http://127.0.0.1:{closed_port()}/hook?token=t0ken"
    a = sites.build(incidents={"escalation_webhooks": [gone, receiver.url]})
    escalator = build_escalator(a, policy=FAST)
    draft, _ = raise_draft(a, spec("critical"), escalator)
    assert escalator.wait(10)
    by_receiver = {e.receiver: e for e in settled(SqlIncidentStore(a.index.db), draft, receivers=2).escalations}
    failed = next(e for e in by_receiver.values() if e.state == "failed")
    assert failed.attempts == FAST.attempts and "attempt 3" in failed.last_error and "t0ken" not in failed.receiver
    assert sorted(e.state for e in by_receiver.values()) == ["delivered", "failed"]  # the other one is reached


@pytest.mark.anyio
async def test_the_api_shows_escalations_and_takes_a_review(sites: Sites, receiver: Receiver) -> None:
    a = sites.build(incidents={"escalation_webhooks": [receiver.url]})
    draft, _ = raise_draft(a, spec("critical"), build_escalator(a, policy=FAST))
    settled(SqlIncidentStore(a.index.db), draft)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(a)), base_url="http://t") as client:
        (shown,) = (await client.get("/api/incidents/drafts")).json()["drafts"]
        assert shown["condition"] == "unretrievable" and shown["state"] == "open" and shown["severity"] == "critical"
        assert shown["classification"]["problem_types"] == ["M.output_none"]
        assert [(e["state"], e["attempts"]) for e in shown["escalations"]] == [("delivered", 1)]
        assert "reviewed_by" in assert_error(await client.post(f"/api/incidents/drafts/{draft.id}/review", json={}), 400)
        assert_error(await client.post("/api/incidents/drafts/999/review", json={"reviewed_by": "qa"}), 404)
        reviewed = await client.post(f"/api/incidents/drafts/{draft.id}/review",
                                     json={"reviewed_by": "Quality Officer", "note": "a disk failed"})
        assert reviewed.status_code == 200, reviewed.text
        body = reviewed.json()
        assert body["state"] == "reviewed" and body["reviewed_by"] == "Quality Officer" and body["reviewed_at"]
        again = (await client.post(f"/api/incidents/drafts/{draft.id}/review", json={"reviewed_by": "other"})).json()
        assert again["reviewed_by"] == "Quality Officer"  # reviewing twice is harmless
    # Reviewed, the condition may raise a new draft (a new episode).
    escalator = build_escalator(a, policy=FAST)
    second, created = raise_draft(a, spec("critical"), escalator)
    assert created and second.id != draft.id and escalator.wait(10)
