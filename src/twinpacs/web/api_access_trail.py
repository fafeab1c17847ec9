"""The access trail over HTTP: GET /api/access-trail, newest first.

Query parameters (all optional): since, until (ISO 8601; UTC without a zone), patient, study,
who (principal name), action, limit (default 1000), format: json (default: {"entries": [...]}),
jsonl (one JSON object per line) or atna (DICOM PS3.15 audit messages, XML)."""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..core.access_trail import trail_filter
from ..core.atna import audit_messages
from ..errors import InvalidInput

FORMATS = ("json", "jsonl", "atna")


async def access_trail(request: Request) -> Response:
    q = request.query_params
    fmt = q.get("format", "json")
    if fmt not in FORMATS:
        raise InvalidInput(f"format {fmt!r} is not one of: {', '.join(FORMATS)}")
    wanted = trail_filter(q.get("since", ""), q.get("until", ""), q.get("patient", ""), q.get("study", ""),
                          q.get("who", ""), q.get("action", ""), q.get("limit", "1000"))
    records = await run_in_threadpool(request.app.state.site.access_trail.entries, wanted)
    if fmt == "atna":
        return Response(audit_messages(records), media_type="application/xml")
    if fmt == "jsonl":
        lines = "".join(json.dumps(r.as_dict(), ensure_ascii=False) + "\n" for r in records)
        return Response(lines, media_type="application/x-ndjson")
    return JSONResponse({"entries": [r.as_dict() for r in records]})


routes: list[BaseRoute] = [Route("/api/access-trail", access_trail, methods=["GET"])]
