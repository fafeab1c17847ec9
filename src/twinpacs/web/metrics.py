"""GET /metrics in the Prometheus text format. Every figure is computed from the index at
scrape time by a custom collector (no process-global counters that a restart or a second
archive node would get wrong): queues per peer, holdings, bytes (G2), active notices (G10),
prefetch jobs and the prefetch hit rate (G9)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..announcements import Announcements
from ..app import Site
from ..core.archive import utcnow
from ..core.notices import SEVERITIES
from ..core.queues import QUEUE_STATES, QueueStats
from ..index.prefetch import SqlPrefetch
from ..index.queue_stats import replication_stats


class SiteCollector(Collector):
    """Collects one site's figures each time it is scraped."""

    def __init__(self, site: Site) -> None:
        self.site = site

    def collect(self) -> Iterator[Metric]:
        site = self.site
        info = GaugeMetricFamily("twinpacs_site_active", "1 when this site is the active one, 0 when standby",
                                 labels=["site", "active_site"])
        info.add_metric([site.name, site.roles.active_site or ""], 1.0 if site.roles.role == "active" else 0.0)
        yield info
        yield from _queue_metrics(replication_stats(site.index.db, [p.name for p in site.settings.peers]))
        yield from _holdings(site.archive.figures())
        yield _notices(Announcements.from_site(site))
        yield from _prefetch(SqlPrefetch(site.index.db))


def _queue_metrics(stats: list[QueueStats]) -> Iterator[Metric]:
    now = utcnow()
    length = GaugeMetricFamily("twinpacs_replication_queue_length",
                               "Replication items per peer and state (pending, confirmed, unverified, failed)",
                               labels=["peer", "state"])
    age = GaugeMetricFamily("twinpacs_replication_oldest_pending_age_seconds",
                            "Age of the oldest item still pending for the peer; 0 when none", labels=["peer"])
    failed = GaugeMetricFamily("twinpacs_replication_failed_items",
                               "Items that ran out of retries and wait for an operator", labels=["peer"])
    retrying = GaugeMetricFamily("twinpacs_replication_retrying_items",
                                 "Pending items whose last send attempt failed", labels=["peer"])
    attempts = GaugeMetricFamily("twinpacs_replication_send_attempts",
                                 "Send attempts recorded on the items in the outbox", labels=["peer"])
    for s in stats:
        for state in QUEUE_STATES:
            length.add_metric([s.destination, state], s.count(state))
        age.add_metric([s.destination], s.oldest_pending_age_s(now))
        failed.add_metric([s.destination], s.count("failed"))
        retrying.add_metric([s.destination], s.retrying)
        attempts.add_metric([s.destination], s.attempts)
    yield from (length, age, failed, retrying, attempts)


def _holdings(figures: dict[str, object]) -> Iterator[Metric]:
    for level in ("patients", "studies", "series", "instances"):
        yield GaugeMetricFamily(f"twinpacs_{level}_held", f"{level.capitalize()} held by this site",
                                value=_number(figures.get(level)))
    yield CounterMetricFamily("twinpacs_bytes_received", "Bytes of DICOM objects received (stores)",
                              value=_number(figures.get("bytes_received")))
    yield CounterMetricFamily("twinpacs_bytes_written", "Bytes written to the object store",
                              value=_number(figures.get("bytes_written")))
    yield GaugeMetricFamily("twinpacs_bytes_written_per_byte_received", "Write amplification (G2)",
                            value=_number(figures.get("bytes_written_per_byte_received")))
    yield GaugeMetricFamily("twinpacs_open_conflicts", "Instances received twice with different content, undecided",
                            value=_number(figures.get("open_conflicts")))


def _notices(announcements: Announcements) -> Metric:
    active = announcements.notices.active()
    family = GaugeMetricFamily("twinpacs_notices_active", "Active downtime notices", labels=["severity"])
    for severity in SEVERITIES:
        family.add_metric([severity], sum(1 for n in active if n.severity == severity))
    return family


def _prefetch(jobs: SqlPrefetch) -> Iterator[Metric]:
    hit_rate = jobs.hit_rate()
    yield CounterMetricFamily("twinpacs_prefetch_studies_opened",
                              "Studies opened (first study metadata request) whose order has a prefetch job",
                              value=hit_rate.opened)
    yield CounterMetricFamily("twinpacs_prefetch_hits",
                              "Studies opened whose relevant priors were all held here at that moment",
                              value=hit_rate.hits)
    yield GaugeMetricFamily("twinpacs_prefetch_hit_ratio",
                            "hits / studies opened, truncated (never rounded up); 0 when none opened",
                            value=hit_rate.rate)
    job_counts, prior_counts = jobs.counts()
    by_job = GaugeMetricFamily("twinpacs_prefetch_jobs", "Prefetch jobs (one per order) per state", labels=["state"])
    for state, count in job_counts.items():
        by_job.add_metric([state], count)
    by_prior = GaugeMetricFamily("twinpacs_prefetch_priors", "Prior studies found at sources, per outcome",
                                 labels=["state"])
    for state, count in prior_counts.items():
        by_prior.add_metric([state], count)
    yield from (by_job, by_prior)


def _number(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0


def render(site: Site) -> bytes:
    """The exposition text for one scrape (blocking: reads the index)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SiteCollector(site))
    return generate_latest(registry)


async def metrics(request: Request) -> Response:
    body = await run_in_threadpool(render, request.app.state.site)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


routes: list[BaseRoute] = [Route("/metrics", metrics, methods=["GET"])]
