"""The pages and the viewer in Firefox too (Debian's Firefox ESR, headless, over WebDriver BiDi:
tests/firefox.py): the worklist and the study page, then the first image and the prior side
by side with the grey levels their pixel data call for, scrolling and a window preset by key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.firefox import Firefox
from tests.viewer.conftest import PRIOR_OFFSET, Archive, centre_hu, expected_grey

TOLERANCE = 2  # grey levels
END, KEY_4 = "\ue010", "4"  # WebDriver's key code for End, and the abdomen preset's key
CURRENT, PRIOR = "#viewport-current", "#viewport-prior"


@pytest.fixture(scope="module")
def firefox() -> Iterator[Firefox]:
    browser = Firefox()
    yield browser
    browser.close()


def attribute(firefox: Firefox, selector: str, name: str) -> str:
    return str(firefox.evaluate(f"document.querySelector({selector!r})?.dataset.{name} ?? ''"))


def wait_attribute(firefox: Firefox, selector: str, name: str, value: str) -> None:
    firefox.wait_for(f"document.querySelector({selector!r})?.dataset.{name} === {value!r}")


def assert_shows(firefox: Firefox, viewport: str, hu: int) -> None:
    """The canvas centre has the grey that `hu` gives under the window the viewport says it shows."""
    found = firefox.evaluate(f"""(() => {{
        const vp = document.querySelector({viewport!r});
        const c = vp.querySelector('canvas');
        const [r, g, b] = c.getContext('2d').getImageData(c.width >> 1, c.height >> 1, 1, 1).data;
        return {{r, g, b, width: +vp.dataset.windowWidth, center: +vp.dataset.windowCenter}};
    }})()""")
    assert found["r"] == found["g"] == found["b"], f"a monochrome image drew colour {found}"
    want = expected_grey(hu, found["width"], found["center"])
    assert abs(found["r"] - want) <= TOLERANCE, f"grey {found['r']}, expected {want:.1f} for {hu} HU in {found}"


def test_worklist_and_study_page(archive: Archive, firefox: Firefox) -> None:
    firefox.goto(f"{archive.url}/")
    rows = firefox.evaluate("[...document.querySelectorAll('table.worklist tbody tr')].length")
    assert rows >= 1
    firefox.goto(f"{archive.url}/studies/{archive.current}")
    assert firefox.evaluate("document.querySelector('h1').textContent").strip()
    assert firefox.evaluate("document.getElementById('open-viewer').getAttribute('href')").startswith(
        f"/viewer/{archive.current}")


def test_viewer_first_image_prior_scroll_and_preset(archive: Archive, firefox: Firefox, tmp_path: Path) -> None:
    firefox.goto(f"{archive.url}/viewer/{archive.current}?prior={archive.prior}")
    for viewport in (CURRENT, PRIOR):
        wait_attribute(firefox, viewport, "state", "ready")
    assert attribute(firefox, CURRENT, "instanceNumber") == "1"
    assert attribute(firefox, PRIOR, "studyUid") == archive.prior
    assert_shows(firefox, CURRENT, centre_hu(1))
    assert_shows(firefox, PRIOR, centre_hu(1, study_offset=PRIOR_OFFSET))
    firefox.screenshot(tmp_path / "firefox-viewer.png")

    firefox.evaluate(f"document.querySelector({CURRENT!r}).focus()")
    firefox.press(END)
    wait_attribute(firefox, CURRENT, "instanceNumber", "20")
    assert_shows(firefox, CURRENT, centre_hu(20))
    firefox.press(KEY_4)
    wait_attribute(firefox, CURRENT, "windowCenter", "50")
    assert attribute(firefox, CURRENT, "windowWidth") == "400"
    assert_shows(firefox, CURRENT, centre_hu(20))
    renderer = firefox.evaluate("document.getElementById('viewer').dataset.renderer")
    assert renderer in ("webgl", "cpu")
