"""What `twinpacs selftest` asks of a site: where its doors and peers are, the state of the
test study, its removal, and the timings of earlier runs.

GET    /api/site                          -> {"site", "role", "active_site", "ae_title", "version",
                                              "dicom": {"bind", "port", "tls"}, "http": {"bind", "port", "url"},
                                              "peers": [{"name", "kind", "base_url", ...}]}
GET    /api/selftest/studies/{study}      -> {"study", "instances": [{"uid", "hash", "replication":
                                              {peer: newest outbox state}}]} (404: not held)
DELETE /api/selftest/studies/{study}      -> {"study", "instances", "series", "versions",
                                              "patient_removed", "files_deleted"}; 403 and nothing
                                              removed unless every object is a self-test object
POST   /api/selftest/runs {"passed", "steps"} -> {"id"}
GET    /api/selftest/runs/latest          -> {"run": {"id", "at", "passed", "steps"} or null}
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .. import __version__
from ..app import Site
from ..core.archive import utcnow
from ..core.operator_log import OperatorLog
from ..errors import InvalidInput, NotFound
from ..index import selftest as runs
from ..index.operator_log import SqlOperatorLogStore
from .context import json_object
from .trail_middleware import record_done


def _site(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


async def site_info(request: Request) -> Response:
    site = _site(request)
    settings = site.settings
    return JSONResponse({
        "site": site.name, "role": site.roles.role, "active_site": site.roles.active_site,
        "ae_title": site.ae_title, "version": __version__,
        # 0 until the DICOM listener listens (or when this process serves no DIMSE).
        "dicom": {"bind": settings.dicom.bind, "port": site.dicom_port, "tls": settings.dicom.tls_cert_file is not None},
        "http": {"bind": settings.http.bind, "port": request.url.port or settings.http.port,
                 "url": str(request.base_url).rstrip("/")},
        "peers": [{"name": p.name, "kind": p.kind, "base_url": p.base_url if p.kind == "twinpacs" else "",
                   "ae_title": p.ae_title, "host": p.host, "port": p.port} for p in settings.peers],
    })


async def study(request: Request) -> Response:
    site, uid = _site(request), request.path_params["study"]

    def read() -> list[dict[str, Any]]:
        held = site.index.stored_instances({"StudyInstanceUID": uid})
        if not held:
            raise NotFound(f"no study {uid} is held here")
        states = runs.replication_states(site.index.db, [i.sop_instance_uid for i in held])
        return [{"uid": i.sop_instance_uid, "series": i.series_instance_uid, "hash": i.content_hash,
                 "replication": states[i.sop_instance_uid]} for i in held]

    return JSONResponse({"study": uid, "instances": await run_in_threadpool(read)})


async def remove(request: Request) -> Response:
    site, uid = _site(request), request.path_params["study"]
    actor = request.query_params.get("actor", "") or "twinpacs selftest"

    def run() -> dict[str, Any]:
        removed = site.archive.remove_selftest_study(uid)
        # The only deletion twinpacs performs is kept on the append-only operator log.
        OperatorLog(SqlOperatorLogStore(site.index.db)).record(actor, "selftest.remove", "", removed)
        return removed

    removed = await run_in_threadpool(run)
    await run_in_threadpool(record_done, request, "deletion", "", uid,
                            f"self-test study removed: {removed.get('instances', 0)} instance(s)")
    return JSONResponse(removed)


async def record_run(request: Request) -> Response:
    body = await json_object(request)
    steps = body.get("steps")
    if not isinstance(steps, list) or not all(isinstance(s, dict) and isinstance(s.get("name"), str) for s in steps):
        raise InvalidInput('"steps" must be a list of {"name", "status", "seconds", "detail"}')
    site = _site(request)
    run_id = await run_in_threadpool(runs.record_run, site.index.db, utcnow(), bool(body.get("passed")), steps)
    return JSONResponse({"id": run_id})


async def latest_run(request: Request) -> Response:
    return JSONResponse({"run": await run_in_threadpool(runs.latest_run, _site(request).index.db)})


routes: list[BaseRoute] = [
    Route("/api/site", site_info),
    Route("/api/selftest/studies/{study}", study, methods=["GET"]),
    Route("/api/selftest/studies/{study}", remove, methods=["DELETE"]),
    Route("/api/selftest/runs", record_run, methods=["POST"]),
    Route("/api/selftest/runs/latest", latest_run, methods=["GET"]),
]
