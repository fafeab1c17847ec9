"""Escalation of incident drafts (issue 8): a draft at or above the configured severity, and
every forced failover, is POSTed at once to the configured webhook receivers with the on-call
contacts. As with notices (core/notices.py) the draft is committed first and delivery runs in
background threads with a timeout and bounded retries; unlike notices, each receiver's delivery
is recorded in the index attempt by attempt (state, attempts, last error), so the draft's API
output shows whether anyone was reached."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .config import IncidentSettings
from .core.archive import utcnow
from .core.incidents import IncidentDraft, severity_rank
from .core.notices import DeliveryPolicy, WebhookDelivery, WebhookSender, post_json, shown_url
from .index.incidents import SqlEscalationLog

if TYPE_CHECKING:
    from .app import Site

log = logging.getLogger(__name__)


class Escalator:
    def __init__(self, deliveries: SqlEscalationLog, settings: IncidentSettings, site: str,
                 sender: WebhookSender = post_json, policy: DeliveryPolicy = DeliveryPolicy(),
                 sleep: Callable[[float], None] = time.sleep, now: Callable[[], datetime] = utcnow) -> None:
        self._deliveries = deliveries
        self._settings = settings
        self._site = site
        self._now = now
        self._webhooks = WebhookDelivery(settings.escalation_webhooks, sender, policy, sleep, what="escalation to")

    def due(self, draft: IncidentDraft) -> bool:
        return severity_rank(draft.severity) >= severity_rank(self._settings.escalate_from)

    def escalate(self, draft: IncidentDraft, always: bool = False) -> int:
        """Start delivering `draft` if it is due (or `always`); the number of receivers."""
        if not (always or self.due(draft)) or not self._webhooks.urls:
            return 0
        payload = {"event": "incident.escalated", "site": self._site, "draft": draft.as_dict(),
                   "on_call": [c.model_dump() for c in self._settings.on_call]}
        reports = {url: functools.partial(self._record, self._deliveries.start(draft.id, shown_url(url), self._now()))
                   for url in self._webhooks.urls}
        self._webhooks.deliver(payload, reports)
        return len(self._webhooks.urls)

    def wait(self, timeout_s: float = 10.0) -> bool:
        """Join outstanding deliveries; True when none is left running."""
        return self._webhooks.wait(timeout_s)

    def _record(self, delivery: int, state: str, error: str) -> None:
        try:
            self._deliveries.attempt(delivery, state, error, self._now())
        except Exception as exc:  # the index unavailable: the log line is what remains
            log.error("could not record escalation attempt %d (%s): %s", delivery, state, exc)


def build_escalator(site: Site, **overrides: Any) -> Escalator:
    return Escalator(SqlEscalationLog(site.index.db), site.settings.incidents, site.name, **overrides)
