"""Which of the archive's own events raise an incident draft, pre-filled and pre-classified.

Pure rules over what the watcher observed (incident_watch.py reads the index and the retrieval
log): each returns the drafts its condition asks for, keyed by a condition such as
"sync_gap:B". The watcher raises a condition's draft once per episode (while the condition
lasts) and the store keeps one open draft per condition, so a lasting condition never floods.

The pre-classification uses the project's stable ids (../shared/reference/): HIT-CS problem
types and consequences (hit-cs.md) and the 18 workflow steps (workflow-steps.md). An analyst
confirms or changes it on review."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .incidents import DraftSpec
from .sync import PeerSync

# Retrieval trouble counts as lasting while the newest slow or failed retrieval is this recent.
RETRIEVAL_QUIET_S = 300.0
MAX_STUDIES = 50  # studies listed in one draft; the figures give the full count


@dataclass(frozen=True)
class Thresholds:
    sync_gap_objects: int = 1
    sync_gap_s: float = 600.0
    retrieval_latency_ms: float = 5000.0
    replication_failures: int = 5


def classification(problem_types: list[str], consequence: str, steps: list[int], basis: str) -> dict[str, Any]:
    return {"problem_types": problem_types, "consequence": consequence, "workflow_steps": steps,
            "stage": "as_reported", "basis": basis}


# -- the retrieval log (written on the retrieval paths, read by the watcher) ------------------

@dataclass(frozen=True)
class RetrievalEvent:
    at: datetime
    kind: str  # "slow" or "failed"
    study: str
    door: str  # e.g. "WADO-RS"
    ms: float = 0.0
    sop_instance_uid: str = ""
    error: str = ""


class RetrievalLog:
    """Slow and failed retrievals, in memory, bounded. A retrieval path calls `finished` (a
    comparison, and an append only when slow) or `failed`; the watcher reads `since`."""

    def __init__(self, slow_ms: float, now: Callable[[], datetime], keep: int = 1000) -> None:
        self.slow_ms = slow_ms
        self._now = now
        self._events: deque[RetrievalEvent] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def finished(self, study: str, ms: float, door: str) -> None:
        if ms >= self.slow_ms:
            self._add(RetrievalEvent(self._now(), "slow", study, door, round(ms, 1)))

    def failed(self, study: str, sop_instance_uid: str, error: str, door: str) -> None:
        self._add(RetrievalEvent(self._now(), "failed", study, door, sop_instance_uid=sop_instance_uid, error=error))

    def _add(self, event: RetrievalEvent) -> None:
        with self._lock:
            self._events.append(event)

    def since(self, at: datetime) -> list[RetrievalEvent]:
        with self._lock:
            return [e for e in self._events if e.at >= at]


# -- the rules --------------------------------------------------------------------------------

@dataclass
class Observation:
    """What the watcher saw in one poll."""

    now: datetime
    peers: list[PeerSync] = field(default_factory=list)
    retrievals: list[RetrievalEvent] = field(default_factory=list)  # the last RETRIEVAL_QUIET_S
    replication: dict[str, dict[str, int]] = field(default_factory=dict)  # peer -> {"failed", "retrying"}
    missing_studies: Callable[[str], list[dict[str, Any]]] = lambda peer: []


class Rules:
    """The rules, with their memory: since when each peer's gap has been over the threshold
    (the oldest pending object's age counts too, so a restart does not reset a gap that was
    already old), and which conditions last. `evaluate` returns drafts for conditions that
    began since the last call only: a condition is raised once while it lasts, even if its
    draft is reviewed meanwhile, and again only after it has ended."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        self._over_since: dict[str, datetime] = {}
        self._lasting: set[str] = set()
        self._active: set[str] = set()

    def evaluate(self, seen: Observation) -> list[DraftSpec]:
        self._active = set()
        specs = [*self._sync_gaps(seen), *self._retrievals(seen), *self._replication(seen)]
        self._lasting = self._active
        return specs

    def forget(self, condition: str) -> None:
        """Its draft could not be written: raise it again at the next evaluation."""
        self._lasting.discard(condition)

    def _fresh(self, condition: str) -> bool:
        self._active.add(condition)
        return condition not in self._lasting

    def _sync_gaps(self, seen: Observation) -> list[DraftSpec]:
        t, specs = self.thresholds, []
        for peer in seen.peers:
            gap = peer.objects_outstanding
            if gap < t.sync_gap_objects:
                self._over_since.pop(peer.name, None)
                continue
            since = self._over_since.setdefault(peer.name, seen.now)
            if peer.oldest_pending_age_s is not None:
                since = min(since, seen.now - timedelta(seconds=peer.oldest_pending_age_s))
                self._over_since[peer.name] = since
            lasted = (seen.now - since).total_seconds()
            if lasted < t.sync_gap_s or not self._fresh(f"sync_gap:{peer.name}"):
                continue
            studies = seen.missing_studies(peer.name)
            figures = {"peer": peer.name, "objects_outstanding": gap, "pending": peer.pending, "failed": peer.failed,
                       "unverified": peer.unverified, "not_queued": peer.not_queued, "percent": peer.percent,
                       "gap_since": since.isoformat(), "lasted_s": round(lasted, 1),
                       "threshold_objects": t.sync_gap_objects, "threshold_s": t.sync_gap_s,
                       "last_error": peer.last_error}
            specs.append(DraftSpec(
                f"sync_gap:{peer.name}",
                f"Sync gap to {peer.name}: {gap} object(s) in {len(studies)} stud{_ies(len(studies))} not confirmed",
                f"Since {since:%Y-%m-%d %H:%M:%S} UTC ({lasted:.0f} s) {peer.name} has not confirmed {gap} object(s) "
                f"this site holds ({peer.percent} in sync; threshold {t.sync_gap_objects} object(s) for "
                f"{t.sync_gap_s:.0f} s). A failover to {peer.name} now would leave these studies missing there."
                + (f" Last error: {peer.last_error}" if peer.last_error else ""),
                {"what": "sync gap", "when": since.isoformat(), "studies": studies[:MAX_STUDIES], "figures": figures},
                classification(["S.storage_backup", "S.network_server"], "hazardous_circumstance", [8, 10],
                               "sync gap over the threshold: copies at the second site are missing (data storage "
                               "and backup), usually because the peer or the network is down or slow; images "
                               "stored (step 8) would not be retrievable there (step 10)"),
                "warning"))
        return specs

    def _retrievals(self, seen: Observation) -> list[DraftSpec]:
        specs = []
        slow = [e for e in seen.retrievals if e.kind == "slow"]
        failed = [e for e in seen.retrievals if e.kind == "failed"]
        if slow and self._fresh("retrieval_latency"):
            worst = max(e.ms for e in slow)
            studies = _studies(slow)
            specs.append(DraftSpec(
                "retrieval_latency",
                f"Slow retrievals: {len(slow)} over {self.thresholds.retrieval_latency_ms:.0f} ms (worst {worst:.0f} ms)",
                f"Since {slow[0].at:%Y-%m-%d %H:%M:%S} UTC {len(slow)} retrieval(s) of {len(studies)} "
                f"stud{_ies(len(studies))} took longer than {self.thresholds.retrieval_latency_ms:.0f} ms; the "
                f"slowest took {worst:.0f} ms.",
                {"what": "retrieval latency", "when": slow[0].at.isoformat(), "studies": studies[:MAX_STUDIES],
                 "figures": {"slow_retrievals": len(slow), "worst_ms": worst,
                             "threshold_ms": self.thresholds.retrieval_latency_ms,
                             "doors": sorted({e.door for e in slow})}},
                classification(["M.output_delayed", "S.network_server"], "hazardous_circumstance", [10, 12],
                               "retrieval slower than the threshold: delayed output while a study is selected "
                               "and retrieved (step 10) for review (step 12)"),
                "warning"))
        if failed and self._fresh("unretrievable"):
            studies = _studies(failed)
            specs.append(DraftSpec(
                "unretrievable",
                f"Studies unretrievable: {len(studies)} stud{_ies(len(studies))} could not be read",
                f"Since {failed[0].at:%Y-%m-%d %H:%M:%S} UTC {len(failed)} retrieval(s) failed because a stored "
                f"object is missing or unreadable: {failed[0].error}",
                {"what": "studies unretrievable", "when": failed[0].at.isoformat(), "studies": studies[:MAX_STUDIES],
                 "figures": {"failed_retrievals": len(failed), "studies": len(studies),
                             "objects": sorted({e.sop_instance_uid for e in failed})[:MAX_STUDIES],
                             "errors": sorted({e.error for e in failed})[:10]}},
                classification(["M.output_none", "S.storage_backup", "S.not_accessible"], "noticeable_no_harm",
                               [10, 12], "a stored object could not be read: no output for the study at selection "
                               "and retrieval (step 10) and review (step 12)"),
                "critical"))
        return specs

    def _replication(self, seen: Observation) -> list[DraftSpec]:
        specs = []
        for peer, counts in seen.replication.items():
            trouble = counts.get("failed", 0) + counts.get("retrying", 0)
            if trouble < self.thresholds.replication_failures or not self._fresh(f"replication_failures:{peer}"):
                continue
            studies = seen.missing_studies(peer)
            specs.append(DraftSpec(
                f"replication_failures:{peer}",
                f"Replication to {peer} failing: {counts.get('failed', 0)} object(s) given up, "
                f"{counts.get('retrying', 0)} still retrying",
                f"{trouble} object(s) could not be sent to {peer} (threshold {self.thresholds.replication_failures}): "
                f"{counts.get('failed', 0)} given up after the retry horizon, {counts.get('retrying', 0)} pending after "
                f"at least {self.thresholds.replication_failures} failed attempts. Failed objects are retried only "
                f"on request (`twinpacs sync retry`).",
                {"what": "repeated replication failures", "when": seen.now.isoformat(),
                 "studies": studies[:MAX_STUDIES],
                 "figures": {"peer": peer, **counts, "threshold": self.thresholds.replication_failures}},
                classification(["S.storage_backup", "S.interface_software"], "hazardous_circumstance", [8],
                               "replication to the second site keeps failing: data storage and backup, over the "
                               "interface between the archives; images stored (step 8) are not copied"),
                "warning"))
        return specs


def forced_failover(details: dict[str, Any], title: str, description: str, at: datetime) -> DraftSpec:
    """The draft of a forced failover (core/failover.py writes the details); each one is its own
    event, and is escalated at once whatever the configured severity."""
    missing = details.get("missing_studies", [])
    return DraftSpec(
        f"forced_failover:{details.get('from', '')}->{details.get('to', '')}@{at.isoformat()}", title, description,
        {"what": "forced failover", "when": at.isoformat(), "studies": missing[:MAX_STUDIES],
         "figures": {"studies_missing": len(missing), "missing_ris": len(details.get("missing_ris", [])),
                     "sync": details.get("sync", {})}, **details},
        classification(["S.storage_backup", "S.not_accessible"], "hazardous_circumstance", [10, 11, 12],
                       "failover forced while the target lacked objects: studies may be missing there (data "
                       "storage and backup, not accessible) at selection and retrieval (10), the referral (11) "
                       "and review (12)"),
        "critical")


def config_change(changes: Iterable[dict[str, Any]], start_id: int, previous_id: int, at: datetime) -> DraftSpec | None:
    """A start whose settings lost or changed a value since the previous start (a setting
    only added is not an incident). Changes are fingerprint.Change.as_dict() rows."""
    relevant = [c for c in changes if c["kind"] in ("removed", "changed", "now default")]
    if not relevant:
        return None
    lost = [c for c in relevant if c["kind"] in ("removed", "now default")]
    keys = [c["key"] for c in relevant]
    return DraftSpec(
        "config_change",
        f"Configuration changed at start: {len(relevant)} setting(s) removed or changed ({', '.join(keys[:5])})",
        f"Start #{start_id} differs from start #{previous_id}: "
        + "; ".join(f"{c['key']} {c['kind']} ({c['old']!r} -> {c['new']!r})" for c in relevant[:20])
        + ". Check each change was intended (`twinpacs config diff`).",
        {"what": "configuration change at start", "when": at.isoformat(), "studies": [],
         "figures": {"start_id": start_id, "previous_start_id": previous_id, "removed_or_default": len(lost),
                     "changed": len(relevant) - len(lost)}, "changes": relevant},
        classification(["S.configuration"], "hazardous_circumstance", [8, 10],
                       "a setting was removed or changed at start (system configuration): the archive "
                       "mediates storing (step 8) and retrieval (step 10)"),
        "critical" if lost else "warning")


def _studies(events: list[RetrievalEvent]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for e in events:
        seen.setdefault(e.study, {"StudyInstanceUID": e.study, "retrievals": 0})["retrievals"] += 1
    return list(seen.values())


def _ies(count: int) -> str:
    return "y" if count == 1 else "ies"
