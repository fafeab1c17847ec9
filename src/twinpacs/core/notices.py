"""Downtime and degraded-state notices (G10): announced where people look. A notice is
committed to the index first; only then is it sent to the configured webhooks, in background
threads with a short timeout and bounded retries, so that posting never waits for a webhook
and a webhook that is down never loses the notice (it is still in the API and the banner)."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ..errors import InvalidInput, NotFound
from .archive import utcnow
from .operator_log import OperatorLog
from .text import check_text

log = logging.getLogger(__name__)

SEVERITIES = ("info", "warning", "critical")
MAX_TITLE = 256  # the notices.title column


@dataclass(frozen=True)
class Notice:
    id: int
    posted_at: datetime
    severity: str  # one of SEVERITIES
    title: str
    body: str = ""
    # Study summaries, e.g. {"StudyInstanceUID", "PatientID", "PatientName", "AccessionNumber",
    # "StudyDate", "instances_missing"}: which studies the notice is about.
    studies: list[dict[str, Any]] = field(default_factory=list)
    posted_by: str = ""
    cleared_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.cleared_at is None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["posted_at"] = self.posted_at.isoformat()
        data["cleared_at"] = self.cleared_at.isoformat() if self.cleared_at else None
        data["active"] = self.active
        return data


NoticeList = list[Notice]  # an alias: inside Notices, `list` is a method


class NoticeStore(Protocol):
    def add(self, posted_at: datetime, severity: str, title: str, body: str,
            studies: list[dict[str, Any]], posted_by: str) -> Notice: ...
    def notices(self, active_only: bool) -> NoticeList: ...
    def get(self, notice_id: int) -> Notice | None: ...
    def clear(self, notice_id: int, at: datetime) -> Notice | None:
        """Set cleared_at if it is not set yet; the notice as it now is, None if unknown."""
        ...


# -- webhooks -------------------------------------------------------------------------------

class WebhookSender(Protocol):
    def __call__(self, url: str, body: bytes, timeout_s: float) -> None:
        """POST `body` (JSON) to `url`; raise on any failure, including a non-2xx answer."""
        ...


def shown_url(url: str) -> str:
    """A webhook URL as logged and recorded: scheme, host and port only, since its user part,
    path or query often carry a token."""
    parts = urllib.parse.urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}/…"


def post_json(url: str, body: bytes, timeout_s: float) -> None:
    """The default sender, on the standard library (the core imports no HTTP client)."""
    request = urllib.request.Request(
        url, data=body, method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "twinpacs-notices"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (configured URLs)
        if not 200 <= response.status < 300:
            raise OSError(f"HTTP {response.status}")


@dataclass(frozen=True)
class DeliveryPolicy:
    timeout_s: float = 3.0  # per attempt
    attempts: int = 3  # then give up, logged as an error
    backoff_s: float = 0.5  # doubles after each failed attempt


AttemptReport = Callable[[str, str], None]
"""Told of each attempt on one URL: (state, error), state "sending" (will retry), "failed"
(gave up) or "delivered"."""


class WebhookDelivery:
    """Fire-and-forget delivery: one daemon thread per (event, URL). `wait()` lets a short-lived
    process (a CLI command, a test) let outstanding deliveries finish before it exits. `what`
    names the deliveries in log lines ("notice webhook", "escalation to")."""

    def __init__(self, urls: list[str], sender: WebhookSender = post_json,
                 policy: DeliveryPolicy = DeliveryPolicy(), sleep: Callable[[float], None] = time.sleep,
                 what: str = "notice webhook") -> None:
        self.urls = list(urls)
        self._sender = sender
        self._policy = policy
        self._sleep = sleep
        self._what = what
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def deliver(self, payload: dict[str, Any], reports: dict[str, AttemptReport] | None = None) -> None:
        """Send `payload` to every URL; `reports` (by URL) are told of each attempt."""
        body = json.dumps(payload, default=str).encode()
        for url in self.urls:
            report = (reports or {}).get(url)
            thread = threading.Thread(target=self._send, args=(url, body, report), name="twinpacs-webhook",
                                      daemon=True)
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()

    def wait(self, timeout_s: float = 10.0) -> bool:
        """Join outstanding deliveries; True when none is left running."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    def _send(self, url: str, body: bytes, report: AttemptReport | None) -> None:
        delay = self._policy.backoff_s
        for attempt in range(1, self._policy.attempts + 1):
            try:
                self._sender(url, body, self._policy.timeout_s)
            except Exception as exc:  # any failure is logged, never raised into a caller
                last = attempt == self._policy.attempts
                if report:
                    report("failed" if last else "sending", f"attempt {attempt}: {exc}")
                if last:
                    log.error("%s %s failed %d times, giving up: %s", self._what, shown_url(url), attempt, exc)
                    return
                log.warning("%s %s failed (attempt %d): %s; retrying", self._what, shown_url(url), attempt, exc)
                self._sleep(delay)
                delay *= 2
            else:
                if report:
                    report("delivered", "")
                return


# -- the facade ----------------------------------------------------------------------------

class Notices:
    """post / list / clear. Built with `twinpacs.announcements.Announcements.from_site(site).notices`
    or `Notices(SqlNoticeStore(site.index.db), WebhookDelivery(urls), site=name, operator_log=...)`.
    With an operator log, every post and clear is also recorded there."""

    def __init__(self, store: NoticeStore, delivery: WebhookDelivery | None = None, site: str = "",
                 operator_log: OperatorLog | None = None, now: Callable[[], datetime] = utcnow) -> None:
        self._store = store
        self.delivery = delivery or WebhookDelivery([])
        self._site = site
        self._log = operator_log
        self._now = now

    def post(self, severity: str, title: str, body: str = "", studies: list[dict[str, Any]] | None = None,
             posted_by: str = "") -> Notice:
        _check(severity, title, studies)
        check_text(body=body, posted_by=posted_by)
        notice = self._store.add(self._now(), severity, title.strip(), body, list(studies or []), posted_by)
        if self._log is not None:
            self._log.record(posted_by or "unknown", "notice.post", title.strip(),
                             {"notice_id": notice.id, "severity": severity, "studies": len(notice.studies)})
        self._announce("notice.posted", notice)  # after the commit, never before
        return notice

    def list(self, active_only: bool = True) -> NoticeList:
        """Newest first."""
        return self._store.notices(active_only)

    def active(self) -> NoticeList:
        return self._store.notices(True)

    def get(self, notice_id: int) -> Notice:
        notice = self._store.get(notice_id)
        if notice is None:
            raise NotFound(f"no notice with id {notice_id}")
        return notice

    def clear(self, notice_id: int, cleared_by: str = "") -> Notice:
        """Clearing twice is harmless: the second call returns the notice as first cleared."""
        before = self.get(notice_id)
        notice = self._store.clear(notice_id, self._now())
        if notice is None:
            raise NotFound(f"no notice with id {notice_id}")
        if before.active:
            if self._log is not None:
                self._log.record(cleared_by or "unknown", "notice.clear", notice.title, {"notice_id": notice.id})
            self._announce("notice.cleared", notice)
        return notice

    def _announce(self, event: str, notice: Notice) -> None:
        self.delivery.deliver({"event": event, "site": self._site, "notice": notice.as_dict()})


def _check(severity: str, title: str, studies: list[dict[str, Any]] | None) -> None:
    check_text(title=title)
    if severity not in SEVERITIES:
        raise InvalidInput(f"severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
    if not title.strip():
        raise InvalidInput("a notice needs a title")
    if len(title.strip()) > MAX_TITLE:
        raise InvalidInput(f"a notice title has at most {MAX_TITLE} characters")
    if studies is not None and not (isinstance(studies, list) and all(isinstance(s, dict) for s in studies)):
        raise InvalidInput("studies must be a list of objects (study summaries)")
