"""Notices, the operator log and incident drafts over HTTP (JSON).

    GET  /api/notices[?all=true]          active notices (all with ?all), newest first
    POST /api/notices                     {"title", "body"?, "severity"?, "studies"?, "posted_by"?}
    POST /api/notices/{id}/clear          {"cleared_by"?}
    GET  /api/operator-log[?limit=&action=]   read only: there is no route that changes it
    GET  /api/incidents/drafts            drafts, newest first: condition, classification, severity,
                                          state, review and each escalation's delivery
    POST /api/incidents/drafts/{id}/review   {"reviewed_by", "note"?}
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..announcements import Announcements
from ..errors import InvalidInput
from .context import json_object

_TRUE, _FALSE = ("1", "true", "yes"), ("0", "false", "no", "")


def _announcements(request: Request) -> Announcements:
    return Announcements.from_site(request.app.state.site)


def _text(body: dict[str, Any], key: str, default: str = "") -> str:
    value = body.get(key, default)
    if not isinstance(value, str):
        raise InvalidInput(f"{key} must be a string")
    return value


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "").lower()
    if value not in _TRUE + _FALSE:
        raise InvalidInput(f"{name} must be true or false, not {value!r}")
    return value in _TRUE


def _limit(request: Request) -> int | None:
    value = request.query_params.get("limit")
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise InvalidInput(f"limit must be a positive integer, not {value!r}")
    return int(value)


async def list_notices(request: Request) -> Response:
    active_only = not _flag(request, "all")
    found = await run_in_threadpool(_announcements(request).notices.list, active_only)
    return JSONResponse({"notices": [n.as_dict() for n in found]})


async def post_notice(request: Request) -> Response:
    body = await json_object(request)
    studies = body.get("studies", [])
    notice = await run_in_threadpool(
        _announcements(request).notices.post, _text(body, "severity", "warning"), _text(body, "title"),
        _text(body, "body"), studies, _text(body, "posted_by", "api"))
    return JSONResponse(notice.as_dict(), status_code=201)


async def clear_notice(request: Request) -> Response:
    body = await json_object(request, required=False)
    notice = await run_in_threadpool(_announcements(request).notices.clear, request.path_params["notice_id"],
                                     _text(body, "cleared_by", "api"))
    return JSONResponse(notice.as_dict())


async def operator_log(request: Request) -> Response:
    entries = await run_in_threadpool(_announcements(request).operator_log.entries, _limit(request),
                                      request.query_params.get("action") or None)
    return JSONResponse({"entries": [e.as_dict() for e in entries]})


async def incident_drafts(request: Request) -> Response:
    drafts = await run_in_threadpool(_announcements(request).incidents.drafts)
    return JSONResponse({"drafts": [d.as_dict() for d in drafts]})


async def review_draft(request: Request) -> Response:
    body = await json_object(request)
    draft = await run_in_threadpool(_announcements(request).incidents.review, request.path_params["draft_id"],
                                    _text(body, "reviewed_by"), _text(body, "note"))
    return JSONResponse(draft.as_dict())


routes: list[BaseRoute] = [
    Route("/api/notices", list_notices, methods=["GET"]),
    Route("/api/notices", post_notice, methods=["POST"]),
    Route("/api/notices/{notice_id:int}/clear", clear_notice, methods=["POST"]),
    Route("/api/operator-log", operator_log, methods=["GET"]),
    Route("/api/incidents/drafts", incident_drafts, methods=["GET"]),
    Route("/api/incidents/drafts/{draft_id:int}/review", review_draft, methods=["POST"]),
]
