"""The configuration a site runs with, and its start history (G7). Read only; secrets masked.

    GET /api/config                 effective settings, this start's environment and fingerprint,
                                    and changed_since_previous_start (null at a first start)
    GET /api/config/history         every recorded start, oldest first, with its changed-key count
    GET /api/config/history/{id}    one start in full (settings and environment)
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..app import Site
from ..errors import NotFound
from ..fingerprint import StartRecord, diff_starts, history_rows
from ..index.config_starts import SqlConfigStarts


def _effective(site: Site, record: StartRecord | None) -> dict[str, Any]:
    starts = SqlConfigStarts(site.index.db)
    if record is None:  # an app not started by `twinpacs serve` (tests, tools): the last start, if any
        latest = starts.latest(2)
        record = StartRecord(latest[0], latest[1] if len(latest) > 1 else None,
                             diff_starts(latest[1], latest[0]) if len(latest) > 1 else None) if latest else None
    return {
        "site": site.name,
        "settings": site.settings.effective(),
        "config_file": str(site.settings.config_file or ""),
        "start": None if record is None else {k: v for k, v in record.start.as_dict().items() if k != "settings"},
        "previous_start_id": record.previous.id if record and record.previous else None,
        "changed_since_previous_start": record.changes.as_dict() if record and record.changes else None,
    }


async def config(request: Request) -> Response:
    record = getattr(request.app.state, "config_start", None)
    return JSONResponse(await run_in_threadpool(_effective, request.app.state.site, record))


async def history(request: Request) -> Response:
    site: Site = request.app.state.site
    starts = await run_in_threadpool(SqlConfigStarts(site.index.db).all)
    return JSONResponse({"site": site.name, "starts": history_rows(starts)})


async def one_start(request: Request) -> Response:
    site: Site = request.app.state.site
    start_id = request.path_params["start_id"]
    start = await run_in_threadpool(SqlConfigStarts(site.index.db).get, start_id)
    if start is None:
        raise NotFound(f"no recorded start with id {start_id}")
    return JSONResponse(start.as_dict())


routes: list[BaseRoute] = [
    Route("/api/config", config),
    Route("/api/config/history", history),
    Route("/api/config/history/{start_id:int}", one_start),
]
