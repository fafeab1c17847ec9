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

from .app import Site
from .core.archive import utcnow
from .core.failover import Failover, Services
from .core.incidents import IncidentDrafts
from .core.notices import Notices, WebhookDelivery
from .core.operator_log import OperatorLog
from .index.incidents import SqlIncidentStore
from .index.notices import SqlNoticeStore
from .index.operator_log import SqlOperatorLogStore
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
    services = Services(HttpPeerControl(site.settings.peers), ann.notices, ann.operator_log, ann.incidents)
    return Failover(site.name, site.roles, site.index, [p.name for p in site.settings.peers], services, utcnow)
