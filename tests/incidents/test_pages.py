"""The incident register's pages against a served site: reporting, the suggested classification
beside the boxes, saving an analysis as a version, the strategies with their reasons, drafts
taken over, the report charts; a clinician who reports gets a receipt, not the register; and
the same flow in Chromium."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page

from twinpacs.app import Site, build_site
from twinpacs.config import load_settings
from twinpacs.index.incident_register import drafts_for, register_for
from tests.backend import backend_url
from tests.browser import chromium
from tests.security.conftest import PASSWORD, csrf_of, login, secure_settings
from tests.served import ServedApp

from .test_suggest import SEED_EN

SEED = {"event_date": "2026-03-10", "event_time": "11:55", "subject": "Examinations missing after a failover",
        "description": SEED_EN["description"], "product": "PACS <b>X</b>", "manufacturer": "Vendor"}
SEED_TYPE, SEED_CONSEQUENCE = "S.configuration", "noticeable_no_harm"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedApp]:
    folder = tmp_path / "a"
    site = build_site(load_settings(overrides={"site": {"data_dir": folder, "name": "A"},
                                               "database": {"url": backend_url(folder)}, "peers": []}))
    http = ServedApp(site)
    yield http
    http.stop()
    site.close()


def site_of(served: ServedApp) -> Site:
    return served.server.config.app.state.site  # type: ignore[no-any-return]


def checked(html: str, name: str) -> list[str]:
    return re.findall(rf'name="{name}" value="([^"]*)" checked', html)


def test_report_then_classify_with_the_suggestions_and_see_the_strategies(served: ServedApp) -> None:
    with httpx.Client(base_url=served.url, timeout=30) as client:
        assert 'id="report-incident"' in client.get("/incidents/new").text
        refused = client.post("/incidents/new", data={**SEED, "description": " "})
        assert refused.status_code == 400 and "an incident needs description" in refused.text
        assert 'value="Examinations missing after a failover"' in refused.text  # what was typed stays
        assert client.get("/api/incidents").json()["incidents"] == []

        made = client.post("/incidents/new", data={**SEED, "cause_investigation": "ignored: not a report field"})
        assert made.status_code == 303 and made.headers["location"] == "/admin/incidents/1"
        page = client.get("/admin/incidents/1").text
        assert "PACS &lt;b&gt;X&lt;/b&gt;" in page and "(Tuesday) 11:55" in page
        assert 'data-suggested="S.not_accessible"' in page and f'data-suggested="{SEED_CONSEQUENCE}"' in page
        assert f'data-suggested="{SEED_TYPE}"' not in page  # the description alone does not say why
        assert "emergency patients" in page  # the supporting passage is shown
        assert checked(page, "problem_type") == [] and checked(page, "workflow_step") == []  # never ticked for you
        assert 'id="no-strategies"' in page
        assert client.get("/api/incidents/1").json()["cause_investigation"] == ""

        investigation = {"stage": "as_reported", "cause_investigation": SEED_EN["cause_investigation"],
                         "measures": SEED_EN["measures"]}
        assert client.post("/admin/incidents/1/analysis", data=investigation).status_code == 303
        page = client.get("/admin/incidents/1?stage=after_investigation").text
        assert f'data-suggested="{SEED_TYPE}"' in page  # the investigation's text names the cause
        assert client.get("/api/incidents/1").json()["version"] == 2

        analysis = {**investigation, "stage": "after_investigation", "problem_type": [SEED_TYPE],
                    "consequence": SEED_CONSEQUENCE, "workflow_step": ["10", "11", "12"],
                    "actions": "adjust the setting\n\nsync"}
        saved = client.post("/admin/incidents/1/analysis", data=analysis)
        assert saved.status_code == 303
        stored = client.get("/api/incidents/1").json()
        assert stored["problem_types"] == {"after_investigation": [SEED_TYPE]}
        assert stored["workflow_steps"] == [10, 11, 12] and stored["consequence"] == SEED_CONSEQUENCE
        assert stored["actions"] == ["adjust the setting", "sync"]
        assert stored["version"] == 3 and stored["versions"][2]["changed_by"] == "anonymous"
        page = client.get(saved.headers["location"]).text
        assert checked(page, "problem_type") == [SEED_TYPE] and checked(page, "workflow_step") == ["10", "11", "12"]
        api = client.get("/api/incidents/1/strategies").json()["strategies"]
        shown = re.findall(r'data-strategy="([^"]+)"', page)
        assert shown == [s["id"] for s in api] and shown  # the page shows what the rules recommend
        assert "because of problem type S.configuration" in page

        assert client.post("/admin/incidents/1/analysis", data=analysis).status_code == 303
        assert client.get("/api/incidents/1").json()["version"] == 3  # nothing changed, no version
        for bad, reason in (({**analysis, "problem_type": ["S.nonsense"]}, "unknown id(s) &#39;S.nonsense&#39;"),
                            ({**analysis, "stage": "later"}, "unknown report stage"),
                            ({**analysis, "measures": "a\x00b"}, "measures contains a NUL character")):
            answer = client.post("/admin/incidents/1/analysis", data=bad)
            assert answer.status_code == 400 and reason in answer.text, answer.text[-3000:]
        assert client.get("/api/incidents/1").json()["version"] == 3
        assert client.get("/admin/incidents/99").status_code == 404


def test_the_register_lists_incidents_drafts_and_charts(served: ServedApp) -> None:
    drafts = drafts_for(site_of(served).index.db)
    draft = drafts.draft("A", "Replication to <B> failing", "12 objects failed", {"peer": "B"})
    with httpx.Client(base_url=served.url, timeout=30) as client:
        empty = client.get("/admin/incidents").text
        assert 'id="no-incidents"' in empty and "Replication to &lt;B&gt; failing" in empty
        taken = client.post(f"/admin/incidents/drafts/{draft.id}/take-over")
        assert taken.status_code == 303 and taken.headers["location"] == "/admin/incidents/1"
        twice = client.post(f"/admin/incidents/drafts/{draft.id}/take-over")
        assert twice.status_code == 400 and "already taken over as incident 1" in twice.text
        assert client.post("/incidents/new", data=SEED).status_code == 303

        register = client.get("/admin/incidents").text
        assert 'id="no-drafts"' in register and re.findall(r'data-incident-id="(\d+)"', register) == ["1", "2"]
        charts = re.findall(r'<img src="(/api/incidents/report/[a-z_]+\.svg)"', register)
        assert len(charts) == 4
        for chart in charts:
            image = client.get(chart)
            assert image.status_code == 200 and image.headers["content-type"] == "image/svg+xml"
            assert image.text.lstrip().startswith("<?xml") and "<svg" in image.text


def test_a_clinician_reports_and_gets_a_receipt_not_the_register(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWINPACS_SECURITY__ANONYMOUS_ROLE", raising=False)  # the secure default
    site = build_site(load_settings(overrides=secure_settings(tmp_path)))
    http = ServedApp(site)
    try:
        http.server.config.app.state.guard.accounts.add("radiologist1", "radiologist", PASSWORD)
        with contextlib.closing(login(http, "radiologist1")) as client:
            form = client.get("/incidents/new").text
            assert 'href="/admin/incidents"' not in form  # the navigation shows what the role may open
            assert client.post("/incidents/new", data=SEED).status_code == 403  # no CSRF token
            made = client.post("/incidents/new", data={**SEED, "csrf_token": csrf_of(form)})
            assert made.status_code == 303 and made.headers["location"] == "/incidents/new?recorded=1"
            assert "recorded as incident 1" in client.get(made.headers["location"]).text
            assert client.get("/admin/incidents").status_code == 403
            assert client.get("/admin/incidents/1").status_code == 403
        with httpx.Client(base_url=http.url) as anonymous:
            assert anonymous.get("/incidents/new").status_code in (303, 401)
        (incident,) = register_for(site.index.db, site.settings.site.data_dir).list()
        assert incident.created_by == "radiologist1"
    finally:
        http.stop()
        site.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def test_in_chromium_report_accept_suggestions_and_see_strategies_and_charts(
        served: ServedApp, browser: Browser, tmp_path: Path) -> None:
    page: Page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(served.url + "/incidents/new")
        page.get_by_label("Date of the event").fill(SEED["event_date"])
        page.get_by_label("Subject").fill(SEED["subject"])
        page.get_by_label("What happened").fill(SEED["description"])
        page.get_by_role("button", name="Record the incident").click()
        page.wait_for_url("**/admin/incidents/1")
        page.screenshot(path=tmp_path / "incident-new.png", full_page=True)

        for field in page.locator("#analysis-form input:has(~ .suggested)").all():  # accept every suggestion
            field.check()
        page.get_by_role("button", name="Save the analysis").click()
        page.wait_for_url("**/admin/incidents/1?stage=as_reported")
        assert page.locator('input[name=problem_type][value="S.not_accessible"]').is_checked()
        assert page.locator(f'input[name=consequence][value="{SEED_CONSEQUENCE}"]').is_checked()
        assert page.locator("#strategies li[data-strategy]").count() > 0
        assert page.locator("#versions tbody tr").count() == 2
        page.screenshot(path=tmp_path / "incident.png", full_page=True)

        page.get_by_role("link", name="the register").click()
        page.wait_for_load_state("networkidle")
        widths = page.locator(".charts img").evaluate_all("images => images.map(i => i.complete && i.naturalWidth)")
        assert len(widths) == 4 and all(w and w > 0 for w in widths)  # the charts were drawn
        page.screenshot(path=tmp_path / "incidents.png", full_page=True)
    finally:
        page.close()
