"""The prefetch queue: STAT orders first, then the earliest scheduled; a source that is down is
recorded, retried after retry_s and given up on visibly; a changed order is searched again, a
cancelled order's pending job dropped."""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from datetime import datetime, timezone

import httpx
import pytest

from twinpacs.core.ris import Priority
from twinpacs.errors import ConfigurationError
from tests.prefetch.conftest import PRIORS, RELEVANT, Source, SiteA, SiteFactory, uids


def closed_port() -> int:
    """A loopback port nothing listens on (bound, never listened on, for the test's length)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    closed_port.keep.append(sock)  # type: ignore[attr-defined]
    return int(sock.getsockname()[1])


closed_port.keep = []  # type: ignore[attr-defined]


def down(name: str = "down") -> dict[str, object]:
    return {"name": name, "kind": "dimse", "ae_title": "GONE", "host": "127.0.0.1", "port": closed_port()}


def states(a: SiteA) -> dict[str, str]:
    return {e["order"]["accession_number"]: e["job"]["state"] for e in a.jobs.status()}


def test_a_stat_order_is_prefetched_before_routine_ones_already_waiting(source: Source,
                                                                        site_a: SiteFactory) -> None:
    a = site_a([source.dicomweb("web")], start=False)  # the worker is driven one job at a time
    day = datetime(2026, 12, 2, tzinfo=timezone.utc)
    for placer, hour, priority in (("R1", 10, Priority.ROUTINE), ("R2", 8, Priority.ROUTINE),
                                   ("A1", 12, Priority.ASAP), ("S1", 14, Priority.STAT)):
        a.site.ris.place_order(a.order(placer, f"ACC{placer}", patient=f"Q{placer}", priority=priority,
                                       scheduled_at=day.replace(hour=hour)))
    a.site.ris.place_order(a.order("U1", "ACCU1", patient="QU1", scheduled_at=None))  # unscheduled: last
    order = []
    while a.worker.run_once():
        order.append(next(acc for acc, state in states(a).items()
                          if state == "done" and acc not in order))
    assert order == ["ACCS1", "ACCA1", "ACCR2", "ACCR1", "ACCU1"]


def test_a_source_down_is_recorded_retried_and_given_up_on_visibly(source: Source, site_a: SiteFactory) -> None:
    a = site_a([down(), source.dicomweb("web")], start=False, retry_s=0.3, give_up_after=2)
    a.site.ris.place_order(a.order())

    assert a.worker.run_once()
    entry = a.job()
    job = entry["job"]
    assert job["state"] == "pending" and job["attempts"] == 1 and job["next_attempt_at"]
    assert job["detail"].startswith("attempt 1 of 2 failed: down: no association with GONE@127.0.0.1:")
    # The source that answered was searched, and its relevant priors fetched all the same.
    assert {p["state"] for p in entry["priors"] if p["study_instance_uid"] in uids(*RELEVANT)} == {"fetched"}
    assert a.held() == uids(*RELEVANT)
    assert not a.worker.run_once()  # not due again before retry_s

    deadline = time.monotonic() + 30
    while not a.worker.run_once():  # the retry, once due
        assert time.monotonic() < deadline
        time.sleep(0.02)
    shown = httpx.get(f"{a.http.url}/api/prefetch", timeout=30).json()
    (entry,) = shown["orders"]
    assert entry["job"]["state"] == "failed" and entry["job"]["attempts"] == 2
    assert entry["job"]["next_attempt_at"] is None
    assert entry["job"]["detail"].startswith("gave up after 2 attempts: down: no association with GONE@")
    assert {p["state"] for p in entry["priors"] if p["study_instance_uid"] in uids(*RELEVANT)} == {"local"}
    assert shown["jobs_by_state"] == {"pending": 0, "running": 0, "done": 0, "failed": 1}
    assert not a.worker.run_once()  # given up: not tried again

    # Opening the order's study now is a miss: the job never saw every source.
    for data in PRIORS["own"].objects:
        a.site.archive.store(data, source="MODALITY")
    assert a.jobs.record_opened(PRIORS["own"].uid, a.worker.clock())
    assert a.jobs.hit_rate().as_dict() == {"opened": 1, "hits": 0, "misses": 1, "rate": 0.0, "percent": "0.0%"}


def test_a_fetch_the_source_refuses_is_recorded_per_study(source: Source, site_a: SiteFactory) -> None:
    """C-MOVE to this site's AE title, whose address at the source names a port nothing listens
    on (site A has no DICOM listener here): found, chosen, failed, each with the status."""
    a = site_a([source.dimse("pacs", "move")], start=False, give_up_after=1)
    a.site.ris.place_order(a.order())
    assert a.worker.run_once()
    entry = a.job()
    assert entry["job"]["state"] == "failed"
    failed = [p for p in entry["priors"] if p["state"] == "failed"]
    assert {p["study_instance_uid"] for p in failed} == uids(*RELEVANT)
    assert all("status 0xA801" in p["error"] for p in failed) and a.held() == set()
    assert entry["job"]["detail"].startswith("gave up after 1 attempt: 3 chosen prior(s) not fetched, the first (")


def test_a_changed_order_is_searched_again_and_a_cancelled_one_dropped(site_a: SiteFactory) -> None:
    a = site_a([down()], start=False, give_up_after=1)
    placed = a.site.ris.place_order(a.order())
    assert a.worker.run_once() and a.job()["job"]["state"] == "failed"

    a.site.ris.change_order(replace(a.order(priority=Priority.STAT), placer_number=placed.placer_number))
    entry = a.job()
    assert (entry["job"]["state"], entry["job"]["attempts"], entry["order"]["priority"]) == ("pending", 0, "STAT")

    a.site.ris.cancel_order(placed.placer_number)
    assert a.jobs.status() == []
    assert not a.worker.run_once()


def test_bad_limit_is_refused(site_a: SiteFactory) -> None:
    a = site_a([down()], start=False)
    response = httpx.get(f"{a.http.url}/api/prefetch", params={"limit": "lots"}, timeout=30)
    assert response.status_code == 400 and "limit" in response.json()["error"]


def test_source_names_must_be_unique(site_a: SiteFactory) -> None:
    with pytest.raises(ConfigurationError, match="prefetch source names must be unique: twin, twin"):
        site_a([down("twin"), down("twin")])
