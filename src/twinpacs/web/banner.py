"""The downtime banner (G10): one shared piece every HTML page the archive serves puts at
its top, so active notices are seen where people look (the pages put it in their shell:
web/page_render.py)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from starlette.concurrency import run_in_threadpool

from ..announcements import Announcements
from ..app import Site
from ..core.notices import Notice

# severity -> (text colour, background colour, border colour)
COLOURS = {
    "info": ("#0b3d91", "#e8f0fe", "#0b3d91"),
    "warning": ("#4d3800", "#fff4ce", "#b38600"),
    "critical": ("#ffffff", "#b00020", "#6d0014"),
}
STUDIES_SHOWN = 20  # a longer list is cut, saying how many more there are
_STUDY_FIELDS = ("PatientID", "PatientName", "AccessionNumber", "StudyDate", "StudyInstanceUID")


def render_banner(notices: Sequence[Notice]) -> str:
    """An HTML fragment with one block per active notice, most severe first; "" when none.
    Every value from a notice is escaped."""
    active = [n for n in notices if n.active]
    if not active:
        return ""
    order = {s: i for i, s in enumerate(("critical", "warning", "info"))}
    active.sort(key=lambda n: (order.get(n.severity, 3), -n.id))
    blocks = "".join(_block(n) for n in active)
    return f'<div class="twinpacs-banner" role="alert" aria-live="polite">{blocks}</div>'


def _block(notice: Notice) -> str:
    fg, bg, border = COLOURS.get(notice.severity, COLOURS["warning"])
    style = (f"color:{fg};background:{bg};border:2px solid {border};padding:0.6em 1em;"
             "margin:0 0 0.4em 0;font-family:sans-serif")
    body = f'<div class="notice-body">{escape(notice.body)}</div>' if notice.body else ""
    posted = f"posted {escape(notice.posted_at.strftime('%Y-%m-%d %H:%M UTC'))}"
    if notice.posted_by:
        posted += f" by {escape(notice.posted_by)}"
    return (
        f'<div class="notice notice-{escape(notice.severity)}" data-notice-id="{notice.id}" style="{style}">'
        f"<strong>{escape(notice.severity.upper())}: {escape(notice.title)}</strong> "
        f"<small>({posted})</small>{body}{_studies(notice.studies)}</div>"
    )


def _studies(studies: list[dict[str, object]]) -> str:
    if not studies:
        return ""
    items = []
    for study in studies[:STUDIES_SHOWN]:
        parts = [f"{k} {study[k]}" for k in _STUDY_FIELDS if study.get(k) not in (None, "")]
        if study.get("instances_missing"):
            parts.append(f"{study['instances_missing']} instance(s) missing")
        items.append(f"<li>{escape(', '.join(parts))}</li>")
    more = len(studies) - STUDIES_SHOWN
    tail = f"<li>and {more} more</li>" if more > 0 else ""
    return f'<div>Studies concerned ({len(studies)}):</div><ul class="notice-studies">{"".join(items)}{tail}</ul>'


def render_page(title: str, content_html: str, notices: Sequence[Notice]) -> str:
    """A whole page with the banner on top: every HTML page uses this (or render_banner)."""
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta http-equiv=\"refresh\" content=\"60\">"  # a new notice shows up without a click
        f"<title>{escape(title)}</title></head><body style=\"margin:0\">"
        f"{render_banner(notices)}<main style=\"padding:1em;font-family:sans-serif\">{content_html}</main>"
        "</body></html>"
    )


async def active_notices(site: Site) -> list[Notice]:
    return await run_in_threadpool(Announcements.from_site(site).notices.active)

