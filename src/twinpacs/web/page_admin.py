"""The administrator's pages, each showing what its /api route returns, from the same code:

    /admin/sync              per peer the exact counts of /api/sync, and the studies not yet confirmed there
    /admin/failover?to=PEER  the failover gate's verdict and the exact missing list (/api/failover/plan)
    /admin/config            the recorded starts (/api/config/history); /admin/config/{id}: one start,
                             and what changed since the start before it
    /admin/selftest          the latest self-test run (/api/selftest/runs/latest)
    /admin/reconciliation    the reconciliation list (/api/reconciliation)
The notices page is web/page_notices.py."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..app import Site
from ..core.failover import Failover
from ..errors import InvalidInput, NotFound
from ..fingerprint import diff_starts, history_rows
from ..index import selftest as runs
from ..index.config_starts import SqlConfigStarts
from . import api_sync
from .api_ris import reconciliation
from .page_data import describe
from .page_render import page, render

NOT_CONFIRMED_SHOWN = 20  # studies listed per peer on the sync page; the failover page lists all
RECONCILIATION_LIMIT = 200


def _site(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


async def admin_home(request: Request) -> Response:
    return RedirectResponse("/admin/sync", status_code=303)


def _failover(request: Request) -> Failover:
    """The very gate /api/sync and /api/failover/plan ask (RIS changes included), so the pages
    show what the API says."""
    return api_sync.failover_for(request)


def _sync(site: Site, failover: Failover) -> dict[str, Any]:
    status = failover.status()
    not_confirmed = {p["name"]: [] if p["in_sync"] else site.index.missing_studies(p["name"])
                     for p in status["peers"]}
    return {"status": status, "not_confirmed": not_confirmed}


@page
async def sync_page(request: Request) -> Response:
    found = await run_in_threadpool(_sync, _site(request), _failover(request))
    return await render(request, "admin_sync.html", {**found, "shown": NOT_CONFIRMED_SHOWN, "refresh_s": 10})


@page
async def failover_page(request: Request) -> Response:
    site = _site(request)
    peers = [p.name for p in site.settings.peers]
    target = request.query_params.get("to") or (peers[0] if peers else "")
    plan = await run_in_threadpool(_failover(request).plan, target) if peers else None
    return await render(request, "admin_failover.html", {
        "peers": peers, "target": target, "plan": plan.as_dict() if plan else None, "refresh_s": 30})


@page
async def config_page(request: Request) -> Response:
    starts = await run_in_threadpool(SqlConfigStarts(_site(request).index.db).all)
    return await render(request, "admin_config.html", {"starts": list(reversed(history_rows(starts)))})


def _one_start(site: Site, start_id: int) -> dict[str, Any]:
    store = SqlConfigStarts(site.index.db)
    start = store.get(start_id)
    if start is None:
        raise NotFound(f"no recorded start with id {start_id}")
    earlier = [s for s in store.all() if s.id < start_id]
    previous = earlier[-1] if earlier else None
    changes = diff_starts(previous, start) if previous else None
    return {"start": start, "previous": previous, "changes": changes,
            "settings": [(key, describe(v["value"]), v.get("source", "")) for key, v in sorted(start.settings.items())],
            "environment": [(key, describe(value)) for key, value in sorted(start.environment.items())]}


@page
async def config_start_page(request: Request) -> Response:
    found = await run_in_threadpool(_one_start, _site(request), request.path_params["start_id"])
    return await render(request, "admin_config_start.html", found)


@page
async def selftest_page(request: Request) -> Response:
    run = await run_in_threadpool(runs.latest_run, _site(request).index.db)
    steps = [{**s, "detail": describe(s.get("detail"))} for s in (run or {}).get("steps", [])]
    return await render(request, "admin_selftest.html", {"run": run, "steps": steps})


@page
async def reconciliation_page(request: Request) -> Response:
    text = request.query_params.get("limit", str(RECONCILIATION_LIMIT))
    if not text.isdigit() or int(text) < 1:
        raise InvalidInput(f"limit must be a positive integer, not {text!r}")
    found = await run_in_threadpool(reconciliation(_site(request)).items, int(text))
    return await render(request, "admin_reconciliation.html", {**found, "limit": int(text)})
