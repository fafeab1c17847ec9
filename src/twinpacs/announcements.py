"""Wiring for notices, the operator log and incident drafts: builds the core facades over a
site's index and configuration. The core cannot build them itself (it imports no adapter),
so the failover, the HTTP API and the CLI all come here:

    ann = Announcements.from_site(site)
    ann.operator_log.record(actor, "failover.force", reason, {"missing_studies": missing})
    ann.notices.post("critical", title, body, studies=missing, posted_by=actor)
    ann.incidents.draft(site.name, title, description, {"reason": reason, ...})
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from .app import Site
from .audit_clients import HttpDigestSource
from .core.audit import Where, audit
from .index.digest import IndexDigestSource
from .core.archive import utcnow
from .core.failover import Failover, Services
from .core.incidents import IncidentDrafts
from .core.notices import Notices, WebhookDelivery
from .core.operator_log import OperatorLog
from .index.incidents import SqlIncidentStore
from .index.notices import SqlNoticeStore
from .index.operator_log import SqlOperatorLogStore
from .incident_watch import FailoverDrafts
from .index.ris_sync import RisPeersStatus, SqlRisSync
from .peer_control import HttpPeerControl


@dataclass(frozen=True)
class Announcements:
    notices: Notices
    operator_log: OperatorLog
    incidents: IncidentDrafts

    @classmethod
    def from_site(cls, site: Site) -> Announcements:
        """Cheap to build (no threads, no connections of its own); build one where needed."""
        db = site.index.db
        operator_log = OperatorLog(SqlOperatorLogStore(db))
        notices = Notices(SqlNoticeStore(db), WebhookDelivery(site.settings.notices.webhooks),
                          site=site.name, operator_log=operator_log)
        return cls(notices, operator_log, IncidentDrafts(SqlIncidentStore(db)))


def build_failover(site: Site) -> Failover:
    """The failover gate over this site's index, announcements and peers."""
    ann = Announcements.from_site(site)
    # A forced failover's draft is pre-classified and escalated at once (incident_watch.py).
    services = Services(HttpPeerControl(site.settings.peers), ann.notices, ann.operator_log, FailoverDrafts(site),
                        final_audit=lambda peer: _lacking_at(site, peer))
    # The RIS changes each twinpacs peer lacks count too: in sync status and in the gate (G4, G6).
    ris = RisPeersStatus(SqlRisSync(site.index.db, site.name),
                         [p.name for p in site.settings.peers if p.kind == "twinpacs"])
    return Failover(site.name, site.roles, site.index, [p.name for p in site.settings.peers], services, utcnow, ris)


def _lacking_at(site: Site, peer: str) -> list[str]:
    """The final audit before a switch: what this site holds that the peer lacks or holds
    differently, by content hash (objects only the peer holds do not block the switch)."""
    settings = next(p for p in site.settings.peers if p.name == peer)
    if settings.kind != "twinpacs":
        return []  # another vendor's archive is never a failover target
    with httpx.Client(timeout=60) as client:
        report = audit(IndexDigestSource(site.index.db, site.name), HttpDigestSource(client, settings.base_url))
    return [f"{d.level.value} {d.key} {d.where.value}" for d in report.differences
            if d.where is not Where.MISSING_ON_A]
