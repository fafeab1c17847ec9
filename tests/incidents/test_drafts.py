"""Each archive event produces exactly one pre-classified draft while its condition lasts,
driven by real conditions on real sites; the rules' timing with a clock of the test's own."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from twinpacs.announcements import Announcements, build_failover
from twinpacs.app import Site
from twinpacs.core.event_watch import Observation, Rules, Thresholds
from twinpacs.core.incidents import IncidentDraft
from twinpacs.core.sync import PeerCounts, peer_sync
from twinpacs.core.taxonomy import load_taxonomy
from twinpacs.fingerprint import record_start
from twinpacs.incident_watch import IncidentWatch
from twinpacs.index.incidents import SqlIncidentStore
from twinpacs.web import create_app
from tests.incidents.conftest import Receiver, Sites, down_peer, study, wait_for
from tests.replication.conftest import rows

TAXONOMY = load_taxonomy()  # the package's data files: the ids a draft may carry
HIT_CS = set(TAXONOMY.problem_types)
CONSEQUENCES = set(TAXONOMY.consequences)


def drafts(site: Site) -> list[IncidentDraft]:
    return Announcements.from_site(site).incidents.drafts()


def only(site: Site, condition: str) -> IncidentDraft:
    found = [d for d in drafts(site) if d.condition.startswith(condition)]
    assert len(found) == 1, [d.condition for d in drafts(site)]
    draft = found[0]
    c = draft.classification
    assert c["problem_types"] and set(c["problem_types"]) <= HIT_CS and c["consequence"] in CONSEQUENCES
    assert c["workflow_steps"] and all(1 <= s <= 18 for s in c["workflow_steps"]) and c["basis"]
    assert draft.state == "open" and draft.details["what"] and draft.details["when"] and draft.details["figures"]
    return draft


def test_sync_gap_to_a_peer_that_is_down(sites: Sites) -> None:
    a = sites.build(peers=[down_peer()], incidents={"sync_gap_objects": 2})
    for data in study(3):
        a.archive.store(data, "TEST")
    assert a.replication is not None
    a.replication.start()  # tries the peer, which is down
    wait_for(lambda: any(r["attempts"] for r in rows(a)), what="a failed attempt")
    watch = sites.watch(a)
    written = watch.check()
    assert [d.condition for d in written] == ["sync_gap:B"]
    draft = only(a, "sync_gap:B")
    assert draft.details["figures"]["objects_outstanding"] == 3 and draft.details["figures"]["peer"] == "B"
    assert [s["instances_missing"] for s in draft.details["studies"]] == [3]
    assert "S.storage_backup" in draft.classification["problem_types"] and draft.severity == "warning"
    # The condition lasts: no second draft, from this watcher or a new one (a restart).
    assert watch.check() == [] and sites.watch(a).check() == []
    # Reviewed while it still lasts: still the one draft of this episode.
    Announcements.from_site(a).incidents.review(draft.id, "qa")
    assert watch.check() == [] and len(drafts(a)) == 1


def test_replication_failures(sites: Sites) -> None:
    a = sites.build(peers=[down_peer()], incidents={"replication_failures": 2}, replication={"give_up_after": 1})
    for data in study(3, seed=2):
        a.archive.store(data, "TEST")
    assert a.replication is not None
    a.replication.start()
    wait_for(lambda: sum(r["state"] == "failed" for r in rows(a)) == 3, what="three failed outbox rows")
    watch = sites.watch(a)
    assert [d.condition for d in watch.check()] == ["replication_failures:B"]
    draft = only(a, "replication_failures:B")
    assert draft.details["figures"]["failed"] == 3 and draft.details["studies"][0]["instances_missing"] == 3
    assert watch.check() == [] and sites.watch(a).check() == []


@pytest.mark.anyio
async def test_unretrievable_study(sites: Sites) -> None:
    a = sites.build()
    stored = [a.archive.store(data, "TEST") for data in study(2, seed=3)]
    (instance,) = a.archive.instances(sop=stored[0].sop_instance_uid)
    path = a.archive.path(instance)
    assert path is not None
    path.unlink()  # the stored object is gone
    url = f"/dicom-web/studies/{instance.study_instance_uid}"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(a)), base_url="http://t") as client:
        for _ in range(2):  # twice: the same condition
            with pytest.raises(FileNotFoundError):
                await client.get(url, headers={"Accept": 'multipart/related; type="application/dicom"'})
    watch = sites.watch(a)
    assert [d.condition for d in watch.check()] == ["unretrievable"]
    draft = only(a, "unretrievable")
    assert draft.details["studies"] == [{"StudyInstanceUID": instance.study_instance_uid, "retrievals": 2}]
    assert draft.details["figures"]["objects"] == [instance.sop_instance_uid] and draft.severity == "critical"
    assert "M.output_none" in draft.classification["problem_types"]
    assert watch.check() == []


@pytest.mark.anyio
async def test_retrieval_latency(sites: Sites) -> None:
    a = sites.build(incidents={"retrieval_latency_ms": 0.001})  # every retrieval is over it
    stored = a.archive.store(study(1, seed=4)[0], "TEST")
    uid = a.archive.instances(sop=stored.sop_instance_uid)[0].study_instance_uid
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(a)), base_url="http://t") as client:
        for _ in range(3):
            answer = await client.get(f"/dicom-web/studies/{uid}", headers={"Accept": 'multipart/related; type="application/dicom"'})
            assert answer.status_code == 200
    watch = sites.watch(a)
    assert [d.condition for d in watch.check()] == ["retrieval_latency"]
    draft = only(a, "retrieval_latency")
    assert draft.details["figures"]["slow_retrievals"] == 3 and draft.details["studies"][0]["StudyInstanceUID"] == uid
    assert draft.classification["problem_types"][0] == "M.output_delayed"
    assert watch.check() == []


def test_configuration_change_between_two_starts(sites: Sites) -> None:
    first = sites.build(replication={"batch_size": 7}, storage={"conflict_policy": "newer-wins"})
    record_start(first)
    first.close()
    second = sites.build(replication={"batch_size": 9})  # one setting changed, one back to its default
    record = record_start(second)
    assert record.changes is not None and not record.changes.empty
    draft = only(second, "config_change")
    keys = {c["key"]: c["kind"] for c in draft.details["changes"]}
    assert keys == {"replication.batch_size": "changed", "storage.conflict_policy": "changed"}
    assert draft.classification["problem_types"] == ["S.configuration"] and draft.severity == "warning"
    second.close()
    third = sites.build(replication={"batch_size": 11})  # changed again while the draft is open
    record_start(third)
    assert len([d for d in drafts(third) if d.condition == "config_change"]) == 1


def test_a_setting_lost_at_start_is_critical(sites: Sites) -> None:
    first = sites.build(storage={"conflict_policy": "keep-first"})  # the default, but given explicitly
    record_start(first)
    first.close()
    second = sites.build()  # the setting is missing: the value silently falls back to its default
    record_start(second)
    draft = only(second, "config_change")
    assert [(c["key"], c["kind"]) for c in draft.details["changes"]] == [("storage.conflict_policy", "now default")]
    assert draft.severity == "critical"


def test_a_default_made_explicit_drafts_nothing(sites: Sites) -> None:
    first = sites.build()
    record_start(first)
    first.close()
    second = sites.build(replication={"batch_size": 20})  # the default value, now explicit
    record = record_start(second)
    assert record.changes is not None and not record.changes.empty and drafts(second) == []


def test_forced_failover(sites: Sites, receiver: Receiver) -> None:
    b = sites.build("B")
    served = sites.serve(b)
    a = sites.build(peers=[{"name": "B", "dicomweb_url": f"{served.url}/dicom-web"}],
                    incidents={"escalation_webhooks": [receiver.url],
                               "on_call": [{"name": "PACS on call", "phone": "+46 8 123 45"}]})
    for data in study(2, seed=5):
        a.archive.store(data, "TEST")  # never replicated: the worker is not started
    result = build_failover(a).run("B", actor="Dr. Admin", force=True, reason="A's storage is failing")
    assert result["forced"] and len(result["missing_studies"]) == 1
    draft = only(a, "forced_failover:A->B@")
    assert draft.severity == "critical" and (draft.details["from"], draft.details["to"]) == ("A", "B")
    assert draft.details["figures"]["studies_missing"] == 1 and draft.details["studies"] == result["missing_studies"]
    assert draft.classification["workflow_steps"] == [10, 11, 12]
    # Escalated at once, with the on-call contacts; the delivery's result is recorded on the draft.
    payload = receiver.wait_for(1)[0]
    assert payload["event"] == "incident.escalated" and payload["draft"]["id"] == draft.id
    assert payload["on_call"][0]["name"] == "PACS on call"
    store = SqlIncidentStore(a.index.db)
    escalated = wait_for(lambda: (d := store.get(draft.id)) and d.escalations and d.escalations[0].state == "delivered"
                         and d, what="the delivery recorded")
    assert escalated.escalations[0].attempts == 1


def test_the_watcher_runs_as_a_background_service(sites: Sites) -> None:
    a = sites.build(incidents={"retrieval_latency_ms": 0.001, "watch_interval_s": 0.05})
    (watch,) = [s for s in a.background if isinstance(s, IncidentWatch)]
    assert a.retrievals is not None
    a.retrievals.finished("1.2.3", 12.5, "WADO-RS")
    watch.start()
    wait_for(lambda: drafts(a), what="the watcher's draft")
    watch.stop()
    assert [d.condition for d in drafts(a)] == ["retrieval_latency"]


NOW = datetime(2026, 11, 30, 11, 55, tzinfo=timezone.utc)


def test_the_gap_must_last_longer_than_the_configured_time() -> None:
    rules = Rules(Thresholds(sync_gap_objects=2, sync_gap_s=600))
    at = lambda s: NOW + timedelta(seconds=s)  # noqa: E731
    seen = lambda s, pending: Observation(at(s), peers=[peer_sync("B", PeerCounts(  # noqa: E731
        10, 10 - pending, pending, 0, 0, None, 0, ""), at(s))])
    assert rules.evaluate(seen(0, 5)) == []  # over the threshold, not for long yet
    assert rules.evaluate(seen(599, 5)) == []
    assert [s.condition for s in rules.evaluate(seen(601, 5))] == ["sync_gap:B"]
    assert rules.evaluate(seen(700, 5)) == []  # lasting: raised once
    assert rules.evaluate(seen(800, 1)) == []  # under the threshold: the episode ends
    assert rules.evaluate(seen(900, 5)) == []  # a new gap starts its own clock
    assert [s.condition for s in rules.evaluate(seen(1501, 5))] == ["sync_gap:B"]


def test_an_old_pending_object_counts_from_its_age() -> None:
    rules = Rules(Thresholds(sync_gap_objects=1, sync_gap_s=600))
    peer = peer_sync("B", PeerCounts(10, 9, 1, 0, 0, NOW - timedelta(seconds=900), 0, ""), NOW)
    assert [s.condition for s in rules.evaluate(Observation(NOW, peers=[peer]))] == ["sync_gap:B"]
