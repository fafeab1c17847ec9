"""The audit door (G5): what another site's auditor asks this one.

GET /api/audit/digest                               -> {"site", "top": node}
GET /api/audit/digest?level=patient                 -> {"site", "level", "parent": "", "nodes": [...]}
GET /api/audit/digest?level=study&parent=PID\\ISSUER
GET /api/audit/digest?level=series&parent=StudyInstanceUID
GET /api/audit/digest?level=instance&parent=SeriesInstanceUID
GET /api/audit/instances                            -> {"site", "instances": [entry...]} (flat)
GET /api/audit/deep                                 -> {"site", "checked", "problems": [...]}

A node is {"key", "digest", "instances", "size", "attributes"}; core/audit.py defines the
digest. Every answer is computed from the index at the time of the request.
"""

from __future__ import annotations

from dataclasses import asdict

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..app import Site
from ..core.audit import AuditLevel
from ..core.audit_deep import deep_check
from ..errors import InvalidInput
from ..index.digest import IndexDigestSource, listing


def _site(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


async def digest(request: Request) -> Response:
    site = _site(request)
    source = IndexDigestSource(site.index.db, site.name)
    level_name = request.query_params.get("level", "")
    parent = request.query_params.get("parent", "")
    if not level_name:
        top = await run_in_threadpool(source.top)
        return JSONResponse({"site": site.name, "top": top.as_dict()})
    try:
        level = AuditLevel(level_name)
    except ValueError:
        raise InvalidInput(f"level must be one of {', '.join(v.value for v in AuditLevel)}") from None
    if (level is AuditLevel.PATIENT) == bool(parent):
        raise InvalidInput("the patient level takes no parent; every other level needs one")
    nodes = await run_in_threadpool(source.children, level, parent)
    return JSONResponse({"site": site.name, "level": level.value, "parent": parent,
                         "nodes": [n.as_dict() for n in nodes]})


async def instances(request: Request) -> Response:
    site = _site(request)
    entries = await run_in_threadpool(listing, site.index.db)
    return JSONResponse({"site": site.name, "instances": [asdict(e) for e in entries]})


async def deep(request: Request) -> Response:
    site = _site(request)

    def run() -> tuple[int, list[dict[str, str]]]:
        checked, problems = deep_check(listing(site.index.db), site.archive.blobs)
        return checked, [p.as_dict() for p in problems]

    checked, problems = await run_in_threadpool(run)
    return JSONResponse({"site": site.name, "checked": checked, "problems": problems})


routes = [
    Route("/api/audit/digest", digest),
    Route("/api/audit/instances", instances),
    Route("/api/audit/deep", deep),
]
