"""The pages as a person uses them: Debian's Chromium (headless) driven by Playwright, one browser
for the module. Each test saves a screenshot of the pages it saw under its tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.replication.conftest import Sites, free_port, objects, twinpacs_peer, wait_for

from tests.browser import chromium

from .world import CLINICAL, REASON, World


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    opened = browser.new_page(viewport={"width": 1280, "height": 900})
    yield opened
    opened.close()


def accessions(page: Page) -> list[str]:
    rows = page.locator("table.worklist tbody tr")
    found: list[str] = rows.evaluate_all("rows => rows.map(r => r.dataset.accession)")
    return found


def test_filter_the_worklist_and_open_a_study_with_its_referral(world: World, page: Page, tmp_path: Path) -> None:
    page.goto(world.url_a + "/")
    assert accessions(page)[:2] == ["ACC-STAT", "ACC-ASAP"] and len(accessions(page)) == 6
    page.screenshot(path=tmp_path / "worklist.png", full_page=True)

    page.select_option("select[name=priority]", "STAT")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/?*priority=STAT*")
    assert accessions(page) == ["ACC-STAT"]

    page.select_option("select[name=priority]", "")  # by keyboard: type a modality, Enter submits
    page.get_by_label("Modality").fill("MR")
    page.get_by_label("Modality").press("Enter")
    page.wait_for_url("**modality=MR*")
    assert accessions(page) == ["ACC-ASAP", "NOORDER1"]
    page.screenshot(path=tmp_path / "worklist-mr.png", full_page=True)

    page.get_by_role("link", name="Everything").click()
    page.locator('tr[data-accession="ACC-STAT"]').get_by_role("link", name="Study").click()
    page.wait_for_url(f"**/studies/{world.uids['stat']}")
    referral = page.locator("#referral")
    assert referral.locator(".reason").inner_text() == REASON  # markup in data shows as text
    assert referral.locator(".clinical-info").inner_text() == CLINICAL
    assert referral.locator(".referral-priority .priority-STAT").inner_text() == "STAT"
    assert referral.locator(".referring").inner_text() == "Ward, Wendy"
    assert page.locator("#open-viewer").get_attribute("href") == \
        f"/viewer/{world.uids['stat']}?prior={world.uids['stat_prior']}"
    page.wait_for_load_state("networkidle")
    widths = page.locator("ul.series img").evaluate_all("images => images.map(i => i.complete && i.naturalWidth)")
    assert len(widths) == 2 and all(w and w > 0 for w in widths)  # the thumbnails were rendered
    page.screenshot(path=tmp_path / "study.png", full_page=True)


def test_a_posted_notice_is_a_banner_on_every_page(world: World, page: Page, tmp_path: Path) -> None:
    title = "<i>Site B</i> down for maintenance"
    page.goto(world.url_a + "/admin/notices")
    page.select_option("select[name=severity]", "critical")
    page.get_by_label("Title").fill(title)
    page.get_by_label("Text").fill("Images stay at A until <b>13:00</b>.")
    page.get_by_role("button", name="Post the notice").click()
    page.wait_for_url("**/admin/notices")
    for path in ("/", f"/studies/{world.uids['stat']}", "/admin/sync"):
        page.goto(world.url_a + path)
        banner = page.locator(".twinpacs-banner")
        assert title in banner.inner_text() and "<b>13:00</b>" in banner.inner_text()
        assert banner.locator("i, b").count() == 0  # shown as text, never as markup
    page.screenshot(path=tmp_path / "banner.png", full_page=True)

    page.goto(world.url_a + "/admin/notices")
    page.locator("#notices tr", has_text="Site B").get_by_role("button", name="Clear").click()
    page.wait_for_url("**/admin/notices")
    page.goto(world.url_a + "/")
    assert page.locator(".twinpacs-banner").count() == 0


def test_sync_dashboard_and_failover_plan_show_the_exact_figures(world: World, page: Page, tmp_path: Path) -> None:
    page.goto(world.url_a + "/admin/sync")
    peer = page.locator('section[data-peer="B"]')

    def figure(key: str) -> str:
        return peer.locator(f'[data-count="{key}"] dd').inner_text()

    assert (figure("held"), figure("confirmed"), figure("pending"), figure("failed")) == (
        str(world.confirmed + world.pending), str(world.confirmed), str(world.pending), "0")
    assert peer.locator(".verdict").inner_text() == "not in sync, 66.6% confirmed"
    page.screenshot(path=tmp_path / "sync.png", full_page=True)

    page.get_by_role("link", name="Failover").click()
    assert page.locator("#verdict").get_attribute("data-ready") == "false"
    missing = page.locator("#missing td.uid").all_inner_texts()
    assert sorted(missing) == sorted([world.uids["mismatch"], world.uids["no_order"]])
    page.screenshot(path=tmp_path / "failover.png", full_page=True)


def test_pending_falls_to_zero_on_the_dashboard_while_replication_runs(more_sites: Sites, page: Page,
                                                                       tmp_path: Path) -> None:
    port_b = free_port()
    a = more_sites.build("A", [twinpacs_peer("B", port_b)])
    b = more_sites.build("B", [])
    more_sites.serve(b, port_b)
    url = more_sites.serve(a).url
    for data in objects(7, seed=9):
        a.archive.store(data, "TEST")
    page.goto(url + "/admin/sync")
    assert page.locator('[data-count="pending"] dd').inner_text() == "7"
    page.screenshot(path=tmp_path / "sync-pending.png", full_page=True)

    assert a.replication is not None
    a.replication.start()

    def pending_shown() -> bool:
        page.reload()
        return page.locator('[data-count="pending"] dd').inner_text() == "0"

    wait_for(pending_shown, what="the dashboard showing 0 pending")
    assert page.locator('[data-count="confirmed"] dd').inner_text() == "7"
    assert page.locator(".verdict").inner_text() == "in sync, 100%"
    page.screenshot(path=tmp_path / "sync-done.png", full_page=True)
