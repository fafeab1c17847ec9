"""The replication API: what a peer asks to confirm what it sent, and the queue's state.

POST /api/replication/hashes  {"uids": [...]} -> {"hashes": {uid: hash or null}}: the content
    hash of each current instance held here, read back from the stored bytes (null: not held,
    or the stored bytes no longer match). The sending site confirms only on an equal hash.
GET  /api/replication/queue   -> {"as_of", "peers": [{name, pending, confirmed, unverified,
    failed, oldest_pending_age_s, attempts, last_error}]}: exact counts of the outbox.
POST /api/replication/retry   {"peer": NAME} -> {"peer", "requeued"}: failed rows back to pending.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..app import Site
from ..core.archive import utcnow
from ..core.queues import QUEUE_STATES
from ..core.replication import held_hashes
from ..errors import InvalidInput, NotFound
from ..index.queue_stats import replication_stats
from .context import json_object

MAX_UIDS = 1000  # a sender asks per batch (replication.batch_size <= 1000)


async def hashes(request: Request) -> Response:
    uids = (await json_object(request)).get("uids")
    if not isinstance(uids, list) or not all(isinstance(u, str) and u and "\\" not in u for u in uids):
        raise InvalidInput('"uids" must be a list of SOP Instance UIDs')
    if len(uids) > MAX_UIDS:
        raise InvalidInput(f"at most {MAX_UIDS} UIDs per request")
    site: Site = request.app.state.site
    return JSONResponse({"hashes": await run_in_threadpool(_hashes, site, uids)})


def _hashes(site: Site, uids: list[str]) -> dict[str, str | None]:
    found = site.index.stored_instances({"SOPInstanceUID": "\\".join(uids)}) if uids else []
    held = held_hashes(found, site.archive.blobs)
    return {uid: held.get(uid) for uid in uids}


async def queue(request: Request) -> Response:
    site: Site = request.app.state.site
    now = utcnow()
    return JSONResponse({"as_of": now.isoformat(), "peers": await run_in_threadpool(_queue, site, now)})


def _queue(site: Site, now: datetime) -> list[dict[str, Any]]:
    stats = replication_stats(site.index.db, [p.name for p in site.settings.peers])
    errors = site.outbox.last_errors()
    return [{"name": s.destination, **{state: s.count(state) for state in QUEUE_STATES},
             "oldest_pending_age_s": s.oldest_pending_age_s(now), "attempts": s.attempts,
             "last_error": errors.get(s.destination, "")} for s in stats]


async def retry(request: Request) -> Response:
    site: Site = request.app.state.site
    peer = (await json_object(request)).get("peer")
    if peer not in {p.name for p in site.settings.peers}:
        raise NotFound(f"no configured peer named {peer!r}")
    if site.replication is None:
        raise NotFound("this site does not replicate")
    return JSONResponse({"peer": peer, "requeued": await run_in_threadpool(site.replication.retry_failed, peer)})


routes: list[BaseRoute] = [
    Route("/api/replication/hashes", hashes, methods=["POST"]),
    Route("/api/replication/queue", queue, methods=["GET"]),
    Route("/api/replication/retry", retry, methods=["POST"]),
]
