"""The image viewer in headless Chromium against a served site: the first image drawn with the
grey levels its pixel data and window/level call for, scrolling by wheel, keys and slider,
window/level by preset and by drag, zoom and reset, a multi-frame object, the prior side by
side as the display protocol picks it, and clear messages when there is nothing to show."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.viewer.conftest import PRIOR_OFFSET, Archive, centre_hu, expected_grey

TOLERANCE = 2  # grey levels
expect.set_options(timeout=20_000)  # a wait for the page (2 shared cores), not a timed assertion

CURRENT, PRIOR = "#viewport-current", "#viewport-prior"


def centre_pixel(page: Page, viewport: str) -> dict[str, float]:
    """The grey at the centre of the viewport's canvas (inside the images' flat square) and the
    window the viewport says it shows, read together (one task of the page: no render between)."""
    found: dict[str, float] = page.evaluate(
        """(sel) => {
             const vp = document.querySelector(sel);
             const c = vp.querySelector('canvas');
             const [r, g, b] = c.getContext('2d').getImageData(c.width >> 1, c.height >> 1, 1, 1).data;
             return {r, g, b, width: +vp.dataset.windowWidth, center: +vp.dataset.windowCenter};
           }""", viewport)
    assert found["r"] == found["g"] == found["b"], f"a monochrome image drew colour {found}"
    return found


def centre_grey(page: Page, viewport: str) -> float:
    return centre_pixel(page, viewport)["r"]


def assert_shows(page: Page, viewport: str, hu: int) -> None:
    """The centre's grey is the one the stored value `hu` gives under the window shown."""
    found = centre_pixel(page, viewport)
    want = expected_grey(hu, found["width"], found["center"])
    assert abs(found["r"] - want) <= TOLERANCE, f"grey {found['r']}, expected {want:.1f} for {hu} HU in {found}"


def test_first_image_scroll_and_window_level(archive: Archive, page: Page, tmp_path: Path) -> None:
    page.goto(f"{archive.url}/viewer/{archive.current}?prior={archive.prior}")
    current, prior = page.locator(CURRENT), page.locator(PRIOR)
    expect(current).to_have_attribute("data-state", "ready")
    expect(current).to_have_attribute("data-instance-number", "1")
    expect(current).to_have_attribute("data-window-width", "400")  # the images' own window
    expect(current).to_have_attribute("data-window-center", "40")
    assert_shows(page, CURRENT, centre_hu(1))
    overlay = page.locator(".pane-current .pane-body")
    for text in ("VIEWER, Vera", "ID VIEW01", "Current 2026-11-30", "Acc ACC-NOW", "Se 1", "Im 1 (1/20)", "W 400 L 40"):
        expect(overlay).to_contain_text(text)
    # The prior, side by side, on the right.
    expect(prior).to_have_attribute("data-state", "ready")
    expect(prior).to_have_attribute("data-study-uid", archive.prior)
    expect(page.locator(".pane-prior .pane-body")).to_contain_text("Prior 2025-06-01")
    assert_shows(page, PRIOR, centre_hu(1, study_offset=PRIOR_OFFSET))
    left, right = current.bounding_box(), prior.bounding_box()
    assert left and right and left["x"] + left["width"] <= right["x"]
    page.screenshot(path=str(tmp_path / "viewer-first-image.png"))

    box = left
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, 120)
    expect(current).to_have_attribute("data-instance-number", "2")
    assert_shows(page, CURRENT, centre_hu(2))
    current.focus()
    page.keyboard.press("End")
    expect(current).to_have_attribute("data-instance-number", "20")
    page.keyboard.press("ArrowUp")
    expect(current).to_have_attribute("data-instance-number", "19")
    page.keyboard.press("PageUp")
    expect(current).to_have_attribute("data-instance-number", "9")
    expect(overlay).to_contain_text("Im 9 (9/20)")
    assert_shows(page, CURRENT, centre_hu(9))
    page.locator(".pane-current .stack-slider").fill("15")
    expect(current).to_have_attribute("data-instance-number", "15")
    assert_shows(page, CURRENT, centre_hu(15))

    before = centre_grey(page, CURRENT)
    current.focus()
    page.keyboard.press("4")  # abdomen, on both sides
    for vp in (current, prior):
        expect(vp).to_have_attribute("data-window-width", "400")
        expect(vp).to_have_attribute("data-window-center", "50")
    assert_shows(page, CURRENT, centre_hu(15))
    assert_shows(page, PRIOR, centre_hu(1, study_offset=PRIOR_OFFSET))
    assert centre_grey(page, CURRENT) != before
    page.get_by_role("button", name="Brain (1)").click()
    expect(current).to_have_attribute("data-window-width", "80")
    assert_shows(page, CURRENT, centre_hu(15))

    # Window/level by dragging: the window changes and the pixels follow it.
    renders = int(current.get_attribute("data-renders") or 0)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 120, box["y"] + box["height"] / 2 + 60, steps=6)
    page.mouse.up()
    page.wait_for_function("([sel, n]) => +document.querySelector(sel).dataset.renders > n", arg=[CURRENT, renders])
    assert (current.get_attribute("data-window-width"), current.get_attribute("data-window-center")) != ("80", "40")
    expect(current).to_have_attribute("data-instance-number", "15")  # dragging did not scroll
    assert_shows(page, CURRENT, centre_hu(15))

    zoom = float(current.get_attribute("data-zoom") or 0)
    current.focus()
    page.keyboard.press("+")
    page.wait_for_function("([sel, z]) => +document.querySelector(sel).dataset.zoom > z", arg=[CURRENT, zoom])
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("r")
    expect(current).to_have_attribute("data-window-width", "400")
    expect(current).to_have_attribute("data-window-center", "40")
    expect(current).to_have_attribute("data-zoom", f"{zoom:.3f}")
    assert_shows(page, CURRENT, centre_hu(15))  # centred again, in the images' window
    page.screenshot(path=str(tmp_path / "viewer-after-reset.png"))


def test_software_webgl_draws_on_the_cpu_and_webgl_can_be_asked_for(archive: Archive, page: Page) -> None:
    """Headless Chromium's WebGL is SwiftShader (software): the viewer draws on the CPU, which
    shows the first image sooner there; ?renderer=webgl keeps the GPU path, same grey levels."""
    page.goto(f"{archive.url}/viewer/{archive.current}?prior={archive.prior}")
    expect(page.locator(CURRENT)).to_have_attribute("data-state", "ready")
    assert page.locator("#viewer").get_attribute("data-renderer") == "cpu"
    for renderer in ("webgl", "cpu"):
        page.goto(f"{archive.url}/viewer/{archive.current}?prior={archive.prior}&renderer={renderer}")
        expect(page.locator(CURRENT)).to_have_attribute("data-state", "ready")
        expect(page.locator(PRIOR)).to_have_attribute("data-state", "ready")
        assert page.locator("#viewer").get_attribute("data-renderer") == renderer
        assert_shows(page, CURRENT, centre_hu(1))
        assert_shows(page, PRIOR, centre_hu(1, study_offset=PRIOR_OFFSET))


def test_multiframe_object_is_a_stack(archive: Archive, page: Page) -> None:
    page.goto(f"{archive.url}/viewer/{archive.current}?prior={archive.prior}")
    current = page.locator(CURRENT)
    expect(current).to_have_attribute("data-state", "ready")
    picker = page.locator(".pane-current .series-picker")
    picker.select_option(label="Series 2 CT: Synthetic CT multi-frame (3 images)")
    expect(current).to_have_attribute("data-image-count", "3")
    expect(current).to_have_attribute("data-frame", "1")
    assert_shows(page, CURRENT, centre_hu(1, frame=1))
    current.focus()
    page.keyboard.press("ArrowDown")
    expect(current).to_have_attribute("data-frame", "2")
    expect(current).to_have_attribute("data-instance-number", "1")
    expect(page.locator(".pane-current .pane-body")).to_contain_text("Frame 2/3")
    assert_shows(page, CURRENT, centre_hu(1, frame=2))
    # The same series named in the address opens first.
    page.goto(f"{archive.url}/viewer/{archive.current}?prior={archive.prior}&series={archive.multiframe_series}")
    expect(current).to_have_attribute("data-series-uid", archive.multiframe_series)
    expect(current).to_have_attribute("data-image-count", "3")
    expect(page.locator(PRIOR)).to_have_attribute("data-state", "ready")  # on its series of the same modality


def test_display_protocol_picks_the_most_recent_earlier_same_modality_study(archive: Archive, page: Page) -> None:
    page.goto(f"{archive.url}/viewer/{archive.current}")  # no ?prior: the viewer finds it
    prior = page.locator(PRIOR)
    expect(prior).to_have_attribute("data-state", "ready")
    expect(prior).to_have_attribute("data-study-uid", archive.prior)  # not the later MR, not the older CT
    assert_shows(page, PRIOR, centre_hu(1, study_offset=PRIOR_OFFSET))
    page.goto(f"{archive.url}/viewer/{archive.prior}")  # the prior's own prior is the older one
    expect(prior).to_have_attribute("data-study-uid", archive.older_prior)


def test_no_prior_failures_and_the_banner_are_said_clearly(archive: Archive, page: Page, tmp_path: Path) -> None:
    page.goto(f"{archive.url}/viewer/{archive.lone}")
    expect(page.locator(CURRENT)).to_have_attribute("data-state", "ready")
    expect(page.locator(PRIOR)).to_have_attribute("data-state", "empty")
    expect(page.locator(".pane-prior .pane-message")).to_contain_text("No prior study")
    page.screenshot(path=str(tmp_path / "viewer-no-prior.png"))

    page.goto(f"{archive.url}/viewer/1.2.3.999")  # a study this site does not hold
    expect(page.locator(CURRENT)).to_have_attribute("data-state", "error")
    expect(page.locator(".pane-current .pane-message")).to_contain_text("Study 1.2.3.999")
    expect(page.locator(PRIOR)).to_have_attribute("data-state", "empty")

    page.goto(f"{archive.url}/viewer/{archive.current}?prior=1.2.3.998")  # a prior it does not hold
    expect(page.locator(CURRENT)).to_have_attribute("data-state", "ready")
    expect(page.locator(PRIOR)).to_have_attribute("data-state", "error")
    expect(page.locator(".pane-prior .pane-message")).to_contain_text("Prior: Study 1.2.3.998")
    page.screenshot(path=str(tmp_path / "viewer-prior-failed.png"))

    response = page.goto(f"{archive.url}/viewer/not-a-uid")
    assert response is not None and response.status == 400
    expect(page.get_by_role("alert")).to_contain_text("not a DICOM UID")

    posted = httpx.post(f"{archive.url}/api/notices", json={"title": "Archive <b>downtime</b> 12:00", "severity": "warning"})
    assert posted.status_code in (200, 201), posted.text
    try:
        page.goto(f"{archive.url}/viewer/{archive.current}")
        expect(page.locator(".twinpacs-banner")).to_contain_text("Archive <b>downtime</b> 12:00")  # escaped
        expect(page.locator(CURRENT)).to_have_attribute("data-state", "ready")
    finally:
        httpx.post(f"{archive.url}/api/notices/{posted.json()['id']}/clear", json={})
