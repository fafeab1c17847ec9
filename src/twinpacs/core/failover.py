"""The failover gate (G6): a planned switch is refused while the target lacks anything the
active site holds: objects, and for a twinpacs target the RIS state too (orders, RIS patients,
study corrections: without them its worklist, referrals and identities would be wrong).
Forcing it takes a named person and a reason, and leaves a trail: an operator-log entry, a
downtime notice naming the studies that may be missing, an incident draft."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from ..errors import InvalidInput, TwinpacsError
from .roles import Roles
from .sync import PeerCounts, PeerSync, peer_sync

log = logging.getLogger(__name__)


class SyncSource(Protocol):
    def peer_counts(self, peer: str, now: datetime) -> PeerCounts: ...
    def missing_studies(self, peer: str) -> list[dict[str, Any]]: ...


class RisSyncSource(Protocol):
    """The RIS changes a peer has not confirmed (index/ris_sync.py); 0 for a DIMSE peer."""

    def pending(self, peer: str) -> int: ...
    def pending_rows(self, peer: str) -> list[dict[str, Any]]: ...


class PeerControl(Protocol):
    """Tells a peer site to take a role (twinpacs peers only)."""

    def set_role(self, peer: str, role: str, active_site: str) -> None: ...


class NoticeBoard(Protocol):
    def post(self, severity: str, title: str, body: str, studies: list[dict[str, Any]], posted_by: str) -> Any: ...


class OperatorTrail(Protocol):
    def record(self, actor: str, action: str, reason: str, details: dict[str, Any]) -> Any: ...


class IncidentDrafter(Protocol):
    def draft(self, site: str, title: str, description: str, details: dict[str, Any]) -> Any: ...


class FailoverRefused(TwinpacsError):
    http_status = 409


@dataclass(frozen=True)
class Plan:
    target: str
    ready: bool
    reasons: list[str]
    sync: PeerSync
    missing_studies: list[dict[str, Any]]
    missing_ris: list[dict[str, Any]] = field(default_factory=list)  # kind, key, changed_at

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "ready": self.ready, "reasons": self.reasons,
                "sync": self.sync.as_dict(), "missing_studies": self.missing_studies,
                "missing_ris": self.missing_ris, "eta_s": self.sync.eta_s}


@dataclass
class Services:
    """What a failover touches besides the index; built by the composition root."""

    control: PeerControl
    notices: NoticeBoard
    trail: OperatorTrail
    incidents: IncidentDrafter
    final_audit: Callable[[str], list[str]] = field(default=lambda peer: [])  # differences found


class Failover:
    def __init__(self, site_name: str, roles: Roles, source: SyncSource, peer_names: list[str],
                 services: Services, clock: Callable[[], datetime], ris: RisSyncSource | None = None) -> None:
        self.site_name = site_name
        self.roles = roles
        self.source = source
        self.peer_names = peer_names
        self.services = services
        self.clock = clock
        self.ris = ris

    def _sync(self, peer: str, now: datetime) -> PeerSync:
        counts = self.source.peer_counts(peer, now)
        if self.ris is not None:
            counts = replace(counts, ris_pending=self.ris.pending(peer))
        return peer_sync(peer, counts, now)

    def status(self) -> dict[str, Any]:
        now = self.clock()
        peers = [self._sync(p, now) for p in self.peer_names]
        return {"as_of": now.isoformat(), "site": self.site_name, "role": self.roles.role,
                "active_site": self.roles.active_site, "in_sync": all(p.in_sync for p in peers),
                "peers": [p.as_dict() for p in peers]}

    def plan(self, target: str) -> Plan:
        if target not in self.peer_names:
            raise InvalidInput(f"{target!r} is not a peer of site {self.site_name} (peers: {', '.join(self.peer_names) or 'none'})")
        sync = self._sync(target, self.clock())
        reasons = []
        if self.roles.role != "active":
            reasons.append(f"this site ({self.site_name}) is not the active site; the active site is {self.roles.active_site or 'unknown'}")
        if sync.objects_outstanding:
            reasons.append(
                f"{target} is not confirmed to hold everything: {sync.pending} pending, {sync.failed} failed, "
                f"{sync.unverified} unverified, {sync.not_queued} never queued"
                + (f"; at the current rate replication needs about {sync.eta_s:.0f} s" if sync.eta_s else "")
            )
        if sync.ris_pending:
            reasons.append(f"{target} has not confirmed {sync.ris_pending} RIS change(s) (orders, RIS patients, "
                           f"study corrections); its worklist, referrals or patient identities would differ")
        missing = self.source.missing_studies(target) if sync.objects_outstanding else []
        missing_ris = self.ris.pending_rows(target) if sync.ris_pending and self.ris is not None else []
        return Plan(target, not reasons, reasons, sync, missing, missing_ris)

    def run(self, target: str, actor: str, force: bool = False, reason: str = "",
            drain_timeout_s: float = 120.0, progress: Callable[[PeerSync], None] | None = None) -> dict[str, Any]:
        """Planned switch: stop accepting stores here, drain the queue, audit, switch roles, notify."""
        plan = self.plan(target)
        if self.roles.role != "active":
            raise FailoverRefused(plan.reasons[0])
        if not plan.ready and not force:
            raise FailoverRefused("failover refused: " + "; ".join(plan.reasons))
        if force and not plan.ready:
            return self._forced(plan, actor, reason)
        if force and not reason.strip():
            raise InvalidInput("--force needs --reason")
        self.roles.set("standby", target)  # new stores are refused here, naming the target
        try:
            self._drain(target, drain_timeout_s, progress)
            differences = self.services.final_audit(target)
            if differences:
                raise FailoverRefused(f"final audit found {len(differences)} difference(s): {'; '.join(differences[:5])}")
            self.services.control.set_role(target, "active", target)
        except Exception:
            self.roles.set("active", self.site_name)  # nothing switched: take stores again
            raise
        self.services.trail.record(actor, "failover", reason or "planned", {"from": self.site_name, "to": target})
        self.services.notices.post("info", f"Planned failover: {target} is now the active site",
                                   f"Switched from {self.site_name} by {actor}. Nothing was missing at {target}.", [], actor)
        return {"switched": True, "forced": False, "from": self.site_name, "to": target}

    def _drain(self, target: str, timeout_s: float, progress: Callable[[PeerSync], None] | None) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            sync = self._sync(target, self.clock())
            if progress:
                progress(sync)
            if sync.in_sync:
                return
            if time.monotonic() > deadline:
                raise FailoverRefused(f"the queue to {target} did not drain within {timeout_s:.0f} s: "
                                      f"{sync.pending} pending, {sync.ris_pending} RIS change(s) pending")
            time.sleep(0.2)

    def _forced(self, plan: Plan, actor: str, reason: str) -> dict[str, Any]:
        if not reason.strip() or not actor.strip():
            raise InvalidInput("a forced failover needs the name of the person forcing it and a reason")
        target, studies = plan.target, plan.missing_studies
        details = {"from": self.site_name, "to": target, "missing_studies": studies, "missing_ris": plan.missing_ris,
                   "sync": plan.sync.as_dict()}
        # The target first: if it cannot be reached, this site stays active and nothing is recorded as done.
        self.services.control.set_role(target, "active", target)
        self.roles.set("standby", target)
        self.services.trail.record(actor, "failover-forced", reason, details)
        title = f"Forced failover to {target}: {len(studies)} stud{'y' if len(studies) == 1 else 'ies'} may be missing"
        body = (f"{actor} forced the switch from {self.site_name} to {target}: {reason}. "
                f"Images of the studies listed may be missing at {target} until replication completes.")
        self.services.notices.post("critical", title, body, studies, actor)
        self.services.incidents.draft(self.site_name, title, body, details)
        log.warning("forced failover to %s by %s: %s", target, actor, reason)
        return {"switched": True, "forced": True, "from": self.site_name, "to": target, "missing_studies": studies}
