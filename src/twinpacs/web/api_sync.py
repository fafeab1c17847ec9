"""Sync status, failover gate and roles over HTTP: /api/sync, /api/failover/*, /api/roles."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..announcements import build_failover
from ..core.failover import Failover
from ..errors import InvalidInput
from .context import json_object
from .trail_middleware import record_done


def _site(request: Request) -> Any:
    return request.app.state.site


def failover_for(request: Request) -> Failover:
    return build_failover(_site(request))


async def sync_status(request: Request) -> Response:
    return JSONResponse(await run_in_threadpool(failover_for(request).status))


async def failover_plan(request: Request) -> Response:
    target = request.query_params.get("to", "")
    plan = await run_in_threadpool(failover_for(request).plan, target)
    return JSONResponse(plan.as_dict())


async def failover_run(request: Request) -> Response:
    body = await json_object(request)
    result = await run_in_threadpool(
        failover_for(request).run, str(body.get("to", "")), str(body.get("actor", "")),
        bool(body.get("force", False)), str(body.get("reason", "")),
        float(body.get("drain_timeout_s", 120.0)),
    )
    await run_in_threadpool(record_done, request, "failover", "", "",
                            f"failover to {body.get('to', '')}" + (" (forced)" if body.get("force") else ""))
    return JSONResponse(result)


async def roles(request: Request) -> Response:
    site = _site(request)
    if request.method == "POST":
        body = await json_object(request)
        role, active = str(body.get("role", "")), str(body.get("active_site", ""))
        if role not in ("active", "standby") or not active:
            raise InvalidInput("expected {\"role\": \"active\"|\"standby\", \"active_site\": NAME}")
        await run_in_threadpool(site.roles.set, role, active)
        await run_in_threadpool(record_done, request, "failover", "", "", f"role set: {role}, active site {active}")
    return JSONResponse({"site": site.name, "role": site.roles.role, "active_site": site.roles.active_site})


routes: list[BaseRoute] = [
    Route("/api/sync", sync_status),
    Route("/api/failover/plan", failover_plan),
    Route("/api/failover/run", failover_run, methods=["POST"]),
    Route("/api/roles", roles, methods=["GET", "POST"]),
]
