"""The pages over plain HTTP against served sites: what each shows, that it is the same as the
API it mirrors, that every value from data is escaped, and that failures become pages that say
what is happening."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from twinpacs.app import Site, build_site
from twinpacs.config import load_settings
from twinpacs.errors import NotFound
from twinpacs.fingerprint import record_start
from twinpacs.web import page_worklist
from twinpacs.web.page_render import page
from tests.backend import backend_url
from tests.replication.conftest import Sites, free_port, twinpacs_peer

from .conftest import worklist_rows
from .world import CLINICAL, XSS_NAME, World

ESCAPED_XSS = "&lt;script&gt;alert(1)&lt;/script&gt;"
HTTP = httpx.Client(timeout=30)  # one client: each new one loads the CA bundle again


def get(url: str, status: int = 200) -> str:
    response = HTTP.get(url)
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"].startswith("text/html")
    assert "<script" not in response.text.lower()  # the pages run no script at all, least of all from data
    return response.text


def count(html: str, key: str) -> str:
    """The figure of a <div data-count=KEY><dt>..</dt><dd>N</dd></div> block."""
    found = re.search(rf'data-count="{key}"><dt>[^<]*</dt><dd>([^<]*)</dd>', html)
    assert found, f"no {key} figure on the page"
    return found[1]


def test_worklist_shows_orders_and_studies_with_images_and_priors(world: World) -> None:
    rows = worklist_rows(get(world.url_a + "/"))
    by_accession = {accession: (status, html) for status, accession, html in rows}
    assert [a for _, a, _ in rows][:2] == ["ACC-STAT", "ACC-ASAP"]  # STAT first, then ASAP
    assert set(by_accession) == {"ACC-STAT", "ACC-ASAP", "ACC-ROUT", "NOORDER1", "OLD-1", "OLD-2"}  # not cancelled
    status, stat = by_accession["ACC-STAT"]
    assert status == "in-progress" and 'class="priority priority-STAT">STAT<' in stat
    assert "6 here (A)" in stat and "B: all 6 confirmed" in stat and "done: 1 fetched" in stat
    assert f'href="/viewer/{world.uids["stat"]}?prior={world.uids["stat_prior"]}"' in stat
    assert f'href="/studies/{world.uids["stat"]}"' in stat
    assert by_accession["ACC-ASAP"][0] == "scheduled" and "no images here yet" in by_accession["ACC-ASAP"][1]
    assert 'data-prefetch="pending"' in by_accession["ACC-ASAP"][1]
    assert "B: 0 of 3 confirmed, 3 pending" in by_accession["ACC-ROUT"][1]
    assert by_accession["NOORDER1"][0] == "no-order"
    assert f'href="/admin/reconciliation#study-{world.uids["no_order"]}"' in by_accession["NOORDER1"][1]


@pytest.mark.parametrize(("query", "expected"), [
    ("priority=STAT", ["ACC-STAT"]),
    ("priority=ASAP", ["ACC-ASAP"]),
    ("modality=mr", ["ACC-ASAP", "NOORDER1"]),
    ("status=cancelled", ["ACC-CANC"]),
    ("status=scheduled", ["ACC-ASAP"]),
    ("status=no-order", ["NOORDER1", "OLD-1", "OLD-2"]),
    ("date=2025-03-10", ["OLD-1"]),
    ("date=2026-03-10&modality=CT&status=in-progress", ["ACC-STAT", "ACC-ROUT"]),
    ("date=2026-03-11", []),
])
def test_worklist_filters(world: World, query: str, expected: list[str]) -> None:
    html = get(f"{world.url_a}/?{query}")
    assert [accession for _, accession, _ in worklist_rows(html)] == expected
    if not expected:
        assert 'id="empty"' in html and "No exam matches this filter" in html


def test_a_long_worklist_is_cut_saying_so(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(page_worklist, "ROWS_SHOWN", 2)
    html = get(world.url_a + "/")
    assert [a for _, a, _ in worklist_rows(html)] == ["ACC-STAT", "ACC-ASAP"]
    assert "6 exams, the first 2 shown: narrow the filter to see the rest" in html


@pytest.mark.parametrize("query", ["priority=URGENT", "status=<b>x</b>", "date=2026-13-01", "modality=C%20T"])
def test_a_bad_filter_is_a_400_page_naming_it(world: World, query: str) -> None:
    html = get(f"{world.url_a}/?{query}", 400)
    assert 'id="error"' in html and query.split("=")[0] in html and "<b>x</b>" not in html


def test_values_from_data_are_escaped(world: World) -> None:
    worklist = get(world.url_a + "/")
    assert ESCAPED_XSS in worklist and XSS_NAME not in worklist
    assert "MR head &lt;i&gt;external&lt;/i&gt;" in worklist
    study = get(f"{world.url_a}/studies/{world.uids['no_order']}")
    assert ESCAPED_XSS in study and XSS_NAME not in study
    referral = get(f"{world.url_a}/studies/{world.uids['stat']}")
    assert "suspected aortic dissection &lt;b&gt;urgent&lt;/b&gt;" in referral and "<b>urgent" not in referral
    for path in ("/admin/sync", "/admin/failover", "/admin/reconciliation"):
        html = get(world.url_a + path)
        assert ESCAPED_XSS in html and XSS_NAME not in html, path


def test_study_page_shows_the_referral_series_and_viewer_link(world: World) -> None:
    uid = world.uids["stat"]
    html = get(f"{world.url_a}/studies/{uid}")
    referral = html[html.index('id="referral"'):html.index('id="series-title"')]
    assert 'class="priority priority-STAT">STAT<' in referral and "Ward, Wendy" in referral
    assert CLINICAL in referral and "scheduled" in referral and "ORD-1" in referral
    assert "CT Chest" in referral and "2026-03-10 10:00" in referral  # the hospital's time (Oslo)
    assert f'href="/viewer/{uid}?prior={world.uids["stat_prior"]}"' in html and 'id="mismatch"' not in html
    thumbnails = re.findall(r'<img src="([^"]+)"', html)
    assert len(thumbnails) == 2 and all("/rendered?viewport=" in t for t in thumbnails)
    # the middle image of three in each series
    assert all(HTTP.get(world.url_a + t.replace("&amp;", "&"), headers={"Accept": "image/*"}).headers[
        "content-type"] in ("image/png", "image/jpeg") for t in thumbnails)
    assert "6 here (A)" in html and "B: all 6 confirmed" in html


def test_a_study_without_order_or_with_another_patient_links_the_reconciliation_list(world: World) -> None:
    for key in ("no_order", "mismatch"):
        uid = world.uids[key]
        html = get(f"{world.url_a}/studies/{uid}")
        assert f'href="/admin/reconciliation#study-{uid}"' in html
        assert ('id="no-referral"' in html) == (key == "no_order") and ('id="mismatch"' in html) == (key == "mismatch")
        listing = get(world.url_a + "/admin/reconciliation")
        assert f'id="study-{uid}"' in listing
    no_order = get(f"{world.url_a}/studies/{world.uids['no_order']}")
    assert "No referral: no order has accession number NOORDER1" in no_order


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # pydicom on the malformed UID
def test_an_unknown_or_malformed_study_is_a_page_saying_so(world: World) -> None:
    assert "no study 1.2.3 is held at site A" in get(world.url_a + "/studies/1.2.3", 404)
    assert 'id="error"' in get(world.url_a + "/studies/" + quote("<x>", safe=""), 400)


def test_sync_page_shows_the_exact_figures_of_the_api(world: World) -> None:
    html = get(world.url_a + "/admin/sync")
    (peer,) = HTTP.get(world.url_a + "/api/sync").json()["peers"]
    assert count(html, "pending") == str(peer["pending"]) == str(world.pending)
    assert count(html, "confirmed") == str(peer["confirmed"]) == str(world.confirmed)
    assert count(html, "held") == str(peer["held"]) == str(world.confirmed + world.pending)
    for key in ("failed", "unverified", "not_queued"):
        assert count(html, key) == str(peer[key]) == "0"
    assert f"not in sync, {peer['percent']} confirmed" in html and peer["percent"] == "66.6%"  # 12/18, truncated
    listed = html[html.index("Studies not yet confirmed at B"):]
    assert "ACC-ROUT" in listed and "NOORDER1" in listed and "ACC-STAT" not in listed


def test_failover_page_shows_the_verdict_and_the_exact_missing_list(world: World) -> None:
    html = get(world.url_a + "/admin/failover?to=B")
    plan = HTTP.get(world.url_a + "/api/failover/plan?to=B").json()
    assert 'data-ready="false"' in html and not plan["ready"]
    for reason in plan["reasons"]:
        assert reason in html
    table = html[html.index('id="missing"'):]
    listed = re.findall(r'<td class="uid">([^<]+)</td>', table)
    assert listed == [s["StudyInstanceUID"] for s in plan["missing_studies"]]
    assert sorted(listed) == sorted([world.uids["mismatch"], world.uids["no_order"]])
    assert "is not a peer of site A" in get(world.url_a + "/admin/failover?to=NOPE", 400)


def test_notices_are_posted_and_cleared_with_forms_and_escaped(world: World) -> None:
    title = "<b>PACS</b> slow & <script>x</script>"
    with httpx.Client(base_url=world.url_a) as client:
        posted = client.post("/admin/notices", data={"severity": "critical", "title": title, "body": "<i>b</i>",
                                                     "posted_by": "<eve>"})
        assert posted.status_code == 303 and posted.headers["location"] == "/admin/notices"
        escaped = "&lt;b&gt;PACS&lt;/b&gt; slow &amp; &lt;script&gt;x&lt;/script&gt;"
        for path in ("/", "/admin/sync", f"/studies/{world.uids['stat']}", "/admin/notices"):
            html = get(world.url_a + path)
            banner = html[html.index('class="twinpacs-banner"'):html.index('<header class="site"')]
            assert escaped in banner and "<b>PACS" not in html and "&lt;eve&gt;" in banner, path
        (notice,) = [n for n in client.get("/api/notices").json()["notices"] if n["title"] == title]
        cleared = client.post(f"/admin/notices/{notice['id']}/clear", data={"cleared_by": "me"})
        assert cleared.status_code == 303
        assert "twinpacs-banner" not in get(world.url_a + "/")
        assert client.get("/api/notices?all=true").json()["notices"][0]["active"] is False

        refused = client.post("/admin/notices", data={"severity": "warning", "title": " ", "body": "kept <text>"})
        assert refused.status_code == 400 and "a notice needs a title" in refused.text
        assert "kept &lt;text&gt;</textarea>" in refused.text  # what was typed is shown again
        assert client.post("/admin/notices/999999/clear").status_code == 404


def test_selftest_page_shows_the_latest_run(world: World) -> None:
    assert 'id="no-run"' in get(world.url_a + "/admin/selftest")
    steps = [{"name": "store", "status": "ok", "seconds": 0.25, "detail": "<b>stored</b>"},
             {"name": "replicate", "status": "failed", "seconds": 5.0, "detail": "B did not confirm"}]
    HTTP.post(world.url_a + "/api/selftest/runs", json={"passed": False, "steps": steps}).raise_for_status()
    html = get(world.url_a + "/admin/selftest")
    assert 'data-passed="false"' in html and "FAILED" in html and "B did not confirm" in html
    assert "&lt;b&gt;stored&lt;/b&gt;" in html


def test_config_history_lists_starts_and_shows_what_changed(more_sites: Sites, tmp_path: Path) -> None:
    data_dir = tmp_path / "site"

    def start(batch_size: int) -> Site:
        site = build_site(load_settings(overrides={
            "site": {"data_dir": data_dir, "name": "C"}, "database": {"url": backend_url(data_dir)},
            "replication": {"batch_size": batch_size}}))
        more_sites.built.append(site)
        record_start(site)
        return site

    start(20)
    url = more_sites.serve(start(7)).url
    html = get(url + "/admin/config")
    assert re.findall(r'data-start="(\d+)"', html) == ["2", "1"] and "first start" in html
    detail = get(url + "/admin/config/2")
    assert "replication.batch_size 20 -&gt; 7 (explicit)" in detail
    assert "This is the first recorded start" in get(url + "/admin/config/1")
    assert "no recorded start with id 9" in get(url + "/admin/config/9", 404)


def test_standby_site_says_where_the_active_site_is(world: World) -> None:
    for path in ("/", "/admin/sync", f"/studies/{world.uids['stat']}"):
        html = get(world.url_b + path)
        assert 'id="standby"' in html and "This site (B) is on standby" in html
        assert f'<a href="{world.url_a}/">{world.url_a}</a>' in html
    assert 'id="standby"' not in get(world.url_a + "/")


def test_a_peer_that_does_not_answer_is_announced(more_sites: Sites) -> None:
    port = free_port()  # nothing listens there
    lone = more_sites.build("C", [twinpacs_peer("D", port)])
    html = get(more_sites.serve(lone).url + "/")
    assert 'data-peer-down="D"' in html and "Peer site D is not answering" in html and f":{port}" in html


def test_no_peer_and_no_data_pages_say_so(more_sites: Sites) -> None:
    url = more_sites.serve(more_sites.build("E", [])).url
    assert "no order has arrived and no study is stored here yet" in get(url + "/")
    assert 'id="no-peers"' in get(url + "/admin/sync") and 'id="no-peers"' in get(url + "/admin/failover")
    assert 'id="no-starts"' in get(url + "/admin/config") and 'id="empty"' in get(url + "/admin/reconciliation")


@pytest.mark.anyio
async def test_a_failing_page_is_an_html_page_without_traceback(world: World) -> None:
    @page
    async def broken(request: Request) -> Response:
        raise RuntimeError("secret internals")

    @page
    async def missing(request: Request) -> Response:
        raise NotFound("nothing <here>")

    app = Starlette(routes=[Route("/broken", broken), Route("/missing", missing)])
    app.state.site = world.a
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        failed = await client.get("/broken")
        assert failed.status_code == 500 and failed.headers["content-type"].startswith("text/html")
        assert "could not be built; the server log has the details" in failed.text
        assert "secret internals" not in failed.text and "Traceback" not in failed.text
        not_found = await client.get("/missing")
        assert not_found.status_code == 404 and "nothing &lt;here&gt;" in not_found.text


def test_static_stylesheet_defines_the_priority_scheme(world: World) -> None:
    css = httpx.get(world.url_a + "/static/twinpacs.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    for priority in ("STAT", "ASAP", "ROUTINE"):
        assert f".priority-{priority} " in css.text and f"tr.row-{priority}" in css.text
