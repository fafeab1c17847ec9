"""The notices page: every notice (active ones first in the banner of every page), a form to
post one and a button to clear each active one. The forms post to

    POST /admin/notices               severity, title, body, posted_by -> 303 to /admin/notices
    POST /admin/notices/{id}/clear    cleared_by                       -> 303 to /admin/notices

through the same Notices facade as POST /api/notices (operator log, webhooks), for administrators;
each form carries the session's CSRF token (web/auth.py checks it). A rejected post shows the
page again with the reason and what was typed."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..announcements import Announcements
from ..core.notices import SEVERITIES
from ..errors import InvalidInput
from .page_render import page, render

_FIELDS = ("severity", "title", "body", "posted_by")


def _announcements(request: Request) -> Announcements:
    return Announcements.from_site(request.app.state.site)


async def _show(request: Request, form: dict[str, str], error: str = "", status_code: int = 200) -> Response:
    notices = await run_in_threadpool(_announcements(request).notices.list, False)
    return await render(request, "admin_notices.html", {
        "notices": notices, "severities": SEVERITIES, "form": form, "error": error}, status_code)


@page
async def notices_page(request: Request) -> Response:
    return await _show(request, {"severity": "warning", "title": "", "body": "", "posted_by": ""})


async def _form(request: Request) -> dict[str, str]:
    data = await request.form()
    return {key: str(data.get(key, "")).strip() for key in _FIELDS}


@page
async def post_notice(request: Request) -> Response:
    form = await _form(request)
    try:
        await run_in_threadpool(_announcements(request).notices.post, form["severity"], form["title"], form["body"],
                                [], form["posted_by"] or "web")
    except InvalidInput as exc:
        return await _show(request, form, exc.message, 400)
    return RedirectResponse("/admin/notices", status_code=303)


@page
async def clear_notice(request: Request) -> Response:
    data = await request.form()
    by = str(data.get("cleared_by", "")).strip() or "web"
    await run_in_threadpool(_announcements(request).notices.clear, request.path_params["notice_id"], by)
    return RedirectResponse("/admin/notices", status_code=303)

