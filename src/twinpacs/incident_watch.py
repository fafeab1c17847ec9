"""The incident watcher: a background service that polls the index and the retrieval log every
few seconds, applies the rules of core/event_watch.py and raises their drafts (one open draft
per condition), escalating those at or above the configured severity. Events that happen in
one place rather than over time are drafted there, through `raise_draft`: a forced failover
(`FailoverDrafts`, wired in announcements.build_failover) and a configuration change at start
(fingerprint.record_start)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .core.archive import utcnow
from .core.event_watch import RETRIEVAL_QUIET_S, Observation, Rules, Thresholds, config_change, forced_failover
from .core.incidents import DraftSpec, IncidentDraft, IncidentDrafts
from .core.sync import peer_sync
from .escalation import Escalator, build_escalator
from .index.incidents import SqlIncidentStore, replication_trouble

if TYPE_CHECKING:
    from .app import Site

log = logging.getLogger(__name__)


def thresholds(site: Site) -> Thresholds:
    s = site.settings.incidents
    return Thresholds(s.sync_gap_objects, s.sync_gap_s, s.retrieval_latency_ms, s.replication_failures)


def raise_draft(site: Site, spec: DraftSpec, escalator: Escalator,
                always_escalate: bool = False) -> tuple[IncidentDraft, bool]:
    """Write the condition's draft unless one is open (that one, False), and escalate a new
    one if it is due."""
    draft, created = IncidentDrafts(SqlIncidentStore(site.index.db)).raise_for(site.name, spec)
    if created:
        log.info("incident drafted (#%d, %s): %s", draft.id, draft.severity, draft.title)
        escalator.escalate(draft, always=always_escalate)
    return draft, created


class FailoverDrafts:
    """The failover's IncidentDrafter: its draft gets the forced failover's pre-classification
    and is escalated at once, whatever the configured severity."""

    def __init__(self, site: Site, escalator: Escalator | None = None, now: Callable[[], datetime] = utcnow) -> None:
        self._site = site
        self.escalator = escalator or build_escalator(site)
        self._now = now

    def draft(self, site: str, title: str, description: str, details: dict[str, Any]) -> IncidentDraft:
        spec = forced_failover(details, title, description, self._now())
        return raise_draft(self._site, spec, self.escalator, always_escalate=True)[0]


def draft_config_change(site: Site, changes: list[dict[str, Any]], start_id: int, previous_id: int,
                        escalator: Escalator | None = None, now: Callable[[], datetime] = utcnow) -> IncidentDraft | None:
    """A start that removed or changed a setting: its draft (None if only settings were added)."""
    spec = config_change(changes, start_id, previous_id, now())
    return raise_draft(site, spec, escalator or build_escalator(site))[0] if spec else None


class IncidentWatch:
    """start/stop like the replication worker; `check()` is one poll (tests call it directly)."""

    def __init__(self, site: Site, escalator: Escalator | None = None, clock: Callable[[], datetime] = utcnow) -> None:
        self.site = site
        self.rules = Rules(thresholds(site))
        self.escalator = escalator or build_escalator(site)
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> list[IncidentDraft]:
        """Observe, apply the rules, raise the drafts of conditions that began; the drafts written
        (a condition whose draft is still open from before writes none)."""
        site, now = self.site, self._clock()
        peers = [p.name for p in site.settings.peers]
        seen = Observation(
            now,
            peers=[peer_sync(p, site.index.peer_counts(p, now), now) for p in peers],
            retrievals=site.retrievals.since(now - timedelta(seconds=RETRIEVAL_QUIET_S)) if site.retrievals else [],
            replication=replication_trouble(site.index.db, site.settings.incidents.replication_failures),
            missing_studies=site.index.missing_studies)
        written = []
        for spec in self.rules.evaluate(seen):
            try:
                draft, created = raise_draft(site, spec, self.escalator)
            except Exception as exc:  # the index busy or down: try again at the next poll
                log.error("could not draft an incident for %s: %s", spec.condition, exc)
                self.rules.forget(spec.condition)
                continue
            if created:
                written.append(draft)
        return written

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="twinpacs-incident-watch", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        interval = self.site.settings.incidents.watch_interval_s
        while not self._stop.wait(interval):
            try:
                self.check()
            except Exception as exc:  # never let one bad poll end the watch
                log.error("incident watch: %s", exc)
