"""Notices reach configured webhooks after the commit, in the background: a slow, failing or
absent webhook never blocks or fails the post, retries are bounded, failures are logged."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from tests.notices.conftest import Receiver
from twinpacs.announcements import Announcements
from twinpacs.app import Site
from twinpacs.core.notices import DeliveryPolicy, Notices, WebhookDelivery
from twinpacs.index.notices import SqlNoticeStore

FAST = DeliveryPolicy(timeout_s=1.0, attempts=3, backoff_s=0.01)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_delivered_to_a_local_receiver(site: Site, receiver: Receiver) -> None:
    notice = Announcements.from_site(site).notices.post("critical", "B unreachable", "Use A", [], "ivan")
    payload = receiver.wait_for(1)[0]
    assert payload == {"event": "notice.posted", "site": "A", "notice": notice.as_dict()}


def test_retries_then_delivers_once(site: Site, receiver: Receiver) -> None:
    receiver.fail_first = 2
    notices = Notices(SqlNoticeStore(site.index.db), WebhookDelivery([receiver.url], policy=FAST), site="A")
    notices.post("info", "Retry me")
    assert notices.delivery.wait(10)
    assert len(receiver.requests) == 3 and len(receiver.delivered) == 1


def test_a_slow_webhook_does_not_block_the_post(site: Site, receiver: Receiver) -> None:
    receiver.hold = threading.Event()
    notices = Announcements.from_site(site).notices
    started = time.monotonic()
    notice = notices.post("warning", "Slow hook")
    assert time.monotonic() - started < 1.0
    assert [n.id for n in notices.active()] == [notice.id]  # committed before any delivery
    receiver.hold.set()
    receiver.wait_for(1)


def test_an_absent_webhook_is_logged_and_given_up(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    port = closed_port()
    url = f"http://hook:s3cret@127.0.0.1:{port}/hook?token=t0ken"
    notices = Notices(SqlNoticeStore(site.index.db), WebhookDelivery([url], policy=FAST), site="A")
    with caplog.at_level(logging.WARNING, logger="twinpacs.core.notices"):
        started = time.monotonic()
        notice = notices.post("critical", "Nobody listens")
        assert time.monotonic() - started < 1.0
        assert notices.delivery.wait(10)
    assert notices.get(notice.id).active
    messages = [r.getMessage() for r in caplog.records]
    assert sum("retrying" in m for m in messages) == FAST.attempts - 1
    assert any("failed 3 times, giving up" in m and f"127.0.0.1:{port}" in m for m in messages)
    # The URL's user part, path and query often carry a token: never in the log.
    assert not any(secret in m for m in messages for secret in ("s3cret", "t0ken", "/hook"))
