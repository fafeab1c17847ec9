"""GET /api/prefetch: per order, the prefetch job and every prior found with its outcome, the
rules and sources in force, and the hit rate (exact counts; the rate truncated, never rounded
up). Also the "study opened" note the study metadata route leaves for the hit rate."""

from __future__ import annotations

import logging
from typing import Any

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..app import Site
from ..config import Settings
from ..core.archive import utcnow
from ..errors import InvalidInput
from ..index.database import Database
from ..index.prefetch import SqlPrefetch

log = logging.getLogger(__name__)

MAX_LIMIT = 1000
_MEMO_LIMIT = 100_000  # studies remembered as already noted; beyond it the index is asked again


def status(settings: Settings, db: Database, limit: int = 100, accession_number: str | None = None) -> dict[str, Any]:
    """What `twinpacs prefetch status` and GET /api/prefetch show (blocking: reads the index)."""
    p = settings.prefetch
    jobs = SqlPrefetch(db)
    job_counts, prior_counts = jobs.counts()
    return {
        "site": settings.site_name, "as_of": utcnow().isoformat(),
        "sources": [{"name": s.name, "kind": s.kind,
                     "retrieve": s.retrieve if s.kind == "dimse" else "wado-rs"} for s in p.sources],
        "rules": {"same_modality": p.same_modality, "same_body_part": p.same_body_part,
                  "within_years": p.within_years, "max_studies": p.max_studies,
                  "retry_s": p.retry_s, "give_up_after": p.give_up_after},
        "hit_rate": jobs.hit_rate().as_dict(),
        "jobs_by_state": job_counts, "priors_by_state": prior_counts,
        "orders": jobs.status(limit, accession_number),
    }


async def prefetch_status(request: Request) -> Response:
    text = request.query_params.get("limit", "100")
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {text!r}")
    accession = request.query_params.get("accession")
    site: Site = request.app.state.site
    return JSONResponse(await run_in_threadpool(status, site.settings, site.index.db, int(text), accession))


def note_opened(request: Request, study_uid: str) -> BackgroundTask | None:
    """Record, after the response has been sent, that a viewer opened the study (for the hit
    rate): the request waits for nothing, a study is noted once, and a site that does not
    prefetch does no work at all."""
    if not request.app.state.site.settings.prefetch.sources:
        return None
    return BackgroundTask(_record_opened, request.app.state, study_uid)


def _record_opened(state: State, study_uid: str) -> None:
    noted: set[str] | None = getattr(state, "prefetch_opened", None)
    if noted is None:
        noted = state.prefetch_opened = set()
    if study_uid in noted:
        return
    site: Site = state.site
    try:
        recorded = SqlPrefetch(site.index.db).record_opened(study_uid, utcnow())
    except Exception:  # the viewer has its answer already; a missed note must not be an error there
        log.exception("prefetch: could not note that study %s was opened", study_uid)
        return
    if recorded:
        if len(noted) >= _MEMO_LIMIT:
            noted.clear()
        noted.add(study_uid)


routes: list[BaseRoute] = [Route("/api/prefetch", prefetch_status)]
