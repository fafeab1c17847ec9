"""The shared banner: escaped, coloured by severity, only active notices; and the home page."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest

from twinpacs.announcements import Announcements
from twinpacs.app import Site
from twinpacs.core.notices import Notice
from twinpacs.web.banner import COLOURS, STUDIES_SHOWN, render_banner, render_page

AT = datetime(2026, 3, 2, 11, 55, tzinfo=timezone.utc)


def notice(id_: int = 1, severity: str = "critical", cleared: bool = False, **kw: object) -> Notice:
    fields: dict[str, object] = {"title": "Failover", "body": "", "studies": [], "posted_by": ""} | kw
    return Notice(id=id_, posted_at=AT, severity=severity, cleared_at=AT if cleared else None, **fields)  # type: ignore[arg-type]


def test_everything_is_escaped() -> None:
    html = render_banner([notice(
        title="<script>alert(1)</script>", body='Tom & "Jerry" <i>', posted_by="<b>eve</b>",
        studies=[{"PatientName": "<img src=x onerror=alert(1)>", "PatientID": "P&1", "instances_missing": 2}])])
    assert "<script>" not in html and "<img" not in html and "<b>" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Tom &amp; &quot;Jerry&quot; &lt;i&gt;" in html
    assert "P&amp;1" in html and "2 instance(s) missing" in html


@pytest.mark.parametrize("severity", ["info", "warning", "critical"])
def test_colour_by_severity(severity: str) -> None:
    html = render_banner([notice(severity=severity)])
    assert f"background:{COLOURS[severity][1]}" in html and f"notice-{severity}" in html


def test_only_active_notices_most_severe_first() -> None:
    assert render_banner([]) == "" and render_banner([notice(cleared=True)]) == ""
    html = render_banner([notice(1, "info", title="I"), notice(2, "critical", title="C"),
                          notice(3, "warning", title="W"), notice(4, "critical", cleared=True, title="gone")])
    assert html.index(": C<") < html.index(": W<") < html.index(": I<") and "gone" not in html


def test_long_study_lists_are_cut() -> None:
    studies = [{"PatientID": f"P{i}"} for i in range(STUDIES_SHOWN + 5)]
    html = render_banner([notice(studies=studies)])
    assert html.count("<li>") == STUDIES_SHOWN + 1 and "and 5 more" in html and f"({STUDIES_SHOWN + 5})" in html


def test_page_wraps_content_with_the_banner() -> None:
    page = render_page("<t>", "<p>content</p>", [notice(title="Down")])
    assert page.startswith("<!doctype html>") and "<title>&lt;t&gt;</title>" in page
    assert page.index("twinpacs-banner") < page.index("<p>content</p>")


@pytest.mark.anyio
async def test_home_page_shows_the_banner(client: httpx.AsyncClient, site: Site) -> None:
    quiet = await client.get("/")
    assert quiet.status_code == 200 and quiet.headers["content-type"].startswith("text/html")
    assert "twinpacs-banner" not in quiet.text
    for link in ("/api/sync", "/api/notices", "/dicom-web/studies"):
        assert f'href="{link}"' in quiet.text
    Announcements.from_site(site).notices.post("critical", "Site B <down>", posted_by="x")
    page = (await client.get("/")).text
    assert "twinpacs-banner" in page and "Site B &lt;down&gt;" in page and "site A" in page
