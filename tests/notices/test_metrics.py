"""/metrics: Prometheus text that parses, with figures computed from the index at scrape time."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from tests.web.conftest import SPEC
from twinpacs.announcements import Announcements
from twinpacs.app import Site
from twinpacs.core.archive import utcnow
from twinpacs.index.schema import outbox
from twinpacs.synthetic import encode, make_study

pytestmark = pytest.mark.anyio


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def outbox_ids(site: Site) -> list[int]:
    with site.index.db.read() as conn:
        return [row[0] for row in conn.execute(select(outbox.c.id).order_by(outbox.c.id))]


async def test_empty_site_says_zero(client: httpx.AsyncClient) -> None:
    m = await scrape(client)
    for state in ("pending", "confirmed", "unverified", "failed"):
        assert m[("twinpacs_replication_queue_length", (("peer", "B"), ("state", state)))] == 0
    assert m[("twinpacs_replication_oldest_pending_age_seconds", (("peer", "B"),))] == 0
    assert m[("twinpacs_instances_held", ())] == 0 and m[("twinpacs_bytes_received_total", ())] == 0
    assert m[("twinpacs_site_active", (("active_site", "A"), ("site", "A")))] == 1


async def test_figures_after_stores_and_outbox_changes(client: httpx.AsyncClient, site: Site) -> None:
    objects = [encode(ds) for ds in make_study(SPEC)]  # 6 instances, one study
    for data in objects:
        site.archive.store(data)
    site.archive.store(objects[0])  # a duplicate: received, not written, not queued again
    ids = outbox_ids(site)
    assert len(ids) == 6
    long_ago = utcnow() - timedelta(seconds=120)

    def shape(conn: object) -> None:
        run = conn.execute  # type: ignore[attr-defined]
        run(update(outbox).where(outbox.c.id == ids[0]).values(state="confirmed", attempts=1))
        run(update(outbox).where(outbox.c.id == ids[1]).values(state="failed", attempts=20, last_error="boom"))
        run(update(outbox).where(outbox.c.id == ids[2]).values(state="unverified", attempts=1))
        run(update(outbox).where(outbox.c.id == ids[3]).values(attempts=2, last_error="timeout", created_at=long_ago))
    site.index.db.write(shape)
    Announcements.from_site(site).notices.post("critical", "B behind", posted_by="t")
    Announcements.from_site(site).notices.post("info", "FYI", posted_by="t")

    m = await scrape(client)
    queue = {state: m[("twinpacs_replication_queue_length", (("peer", "B"), ("state", state)))]
             for state in ("pending", "confirmed", "unverified", "failed")}
    assert queue == {"pending": 3, "confirmed": 1, "unverified": 1, "failed": 1}
    assert 120 <= m[("twinpacs_replication_oldest_pending_age_seconds", (("peer", "B"),))] < 180
    assert m[("twinpacs_replication_failed_items", (("peer", "B"),))] == 1
    assert m[("twinpacs_replication_retrying_items", (("peer", "B"),))] == 1
    assert m[("twinpacs_replication_send_attempts", (("peer", "B"),))] == 24
    assert m[("twinpacs_instances_held", ())] == 6 and m[("twinpacs_studies_held", ())] == 1
    received = sum(len(o) for o in objects) + len(objects[0])
    assert m[("twinpacs_bytes_received_total", ())] == received
    assert m[("twinpacs_bytes_written_total", ())] == sum(len(o) for o in objects)
    assert m[("twinpacs_notices_active", (("severity", "critical"),))] == 1
    assert m[("twinpacs_notices_active", (("severity", "info"),))] == 1
    assert m[("twinpacs_notices_active", (("severity", "warning"),))] == 0


async def test_a_peer_no_longer_configured_still_shows(client: httpx.AsyncClient, site: Site) -> None:
    site.archive.store(encode(make_study(SPEC)[0]))
    site.index.db.write(lambda conn: conn.execute(update(outbox).values(peer="OLD")))
    m = await scrape(client)
    assert m[("twinpacs_replication_queue_length", (("peer", "OLD"), ("state", "pending")))] == 1
    assert m[("twinpacs_replication_queue_length", (("peer", "B"), ("state", "pending")))] == 0
