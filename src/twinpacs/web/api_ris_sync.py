"""Receiving the RIS state from a twinpacs peer (core/ris_sync.py), and what each peer lacks.

POST /api/replication/ris  {"changes": [{kind, key, origin, revision, data}, ...]} with the
    X-Twinpacs-Origin header naming a configured twinpacs peer -> {"results": ["applied" |
    "held" | "kept", ...]}, one per change, in order. All or nothing: a bad change is a 400
    naming it, and nothing is applied. Accepted on a standby too (that is its purpose).
GET  /api/replication/ris  -> {"peers": [{name, pending, last_error}]}: exact counts of the RIS
    changes (orders, RIS patients, study corrections) each twinpacs peer has not confirmed.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..app import Site
from ..core.archive import utcnow
from ..core.ris_sync import parse_changes
from ..errors import TwinpacsError
from ..index.ris_sync import SqlRisSync
from .context import json_object


ORIGIN_HEADER = "X-Twinpacs-Origin"  # as peer.py sends it


class NotAPeer(TwinpacsError):
    http_status = 403


def store(site: Site) -> SqlRisSync:
    return SqlRisSync(site.index.db, site.name)


def twinpacs_peers(site: Site) -> list[str]:
    return [p.name for p in site.settings.peers if p.kind == "twinpacs"]


async def receive(request: Request) -> Response:
    site: Site = request.app.state.site
    sender = request.headers.get(ORIGIN_HEADER, "")
    if sender not in twinpacs_peers(site):
        raise NotAPeer(f"RIS changes are taken only from a configured twinpacs peer, not {sender or 'an unnamed sender'!r}")
    changes = parse_changes((await json_object(request)).get("changes"))
    results = await run_in_threadpool(store(site).apply, changes, site.roles.role == "active", utcnow())
    return JSONResponse({"results": results})


async def status(request: Request) -> Response:
    site: Site = request.app.state.site
    return JSONResponse({"peers": await run_in_threadpool(_status, site)})


def _status(site: Site) -> list[dict[str, Any]]:
    sync = store(site)
    return [{"name": p, "pending": sync.pending(p), "last_error": sync.last_error(p)} for p in twinpacs_peers(site)]


routes: list[BaseRoute] = [
    Route("/api/replication/ris", receive, methods=["POST"]),
    Route("/api/replication/ris", status, methods=["GET"]),
]
