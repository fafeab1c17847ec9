"""Time from navigation to the first image on screen in the viewer, for a 512x512 CT series.

    .venv/bin/python bench/viewer_first_image.py [--instances 100] [--runs 9]

A site (SQLite, a temporary folder) holds one synthetic 512x512 16-bit CT series; it is served
by uvicorn on 127.0.0.1 and opened in Debian's headless Chromium (/usr/bin/chromium) through
Playwright. Each run is a fresh browser context (empty cache: the bundle, the metadata and the
first frame all come over HTTP), navigating to /viewer/{study}. The time is the page's own clock
(performance.now(), from navigation start) at the first animation frame after the viewport
reported its first rendered image (data-state="ready"). A warm figure (the same page reloaded,
the bundle cached by the browser) is printed too. Needs the viewer bundle built (scripts/setup.sh).
The browser sends a fresh bearer token of role radiologist with every request (compare.SiteAccess).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ scripts import each other
from compare import SiteAccess

from twinpacs.app import build_site
from twinpacs.config import load_settings
from twinpacs.synthetic import StudySpec, encode, make_study
from twinpacs.web import create_app
from twinpacs.web.viewer import MANIFEST

CHROMIUM = "/usr/bin/chromium"
# Records when the current viewport first says "ready", then waits one frame: on screen.
WATCH = """
new MutationObserver((_, observer) => {
  const vp = document.getElementById('viewport-current');
  if (vp && vp.dataset.state !== 'loading' && vp.dataset.state !== undefined) {
    observer.disconnect();
    requestAnimationFrame(() => { window.__firstImage = [vp.dataset.state, performance.now()]; });
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-state'] });
"""


def serve(app: object) -> tuple[uvicorn.Server, str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",  # type: ignore[arg-type]
                                           access_log=False, lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


def first_image_ms(page: Page, url: str) -> float:
    page.goto(url)
    page.wait_for_function("() => window.__firstImage", timeout=60_000)
    state, ms = page.evaluate("() => window.__firstImage")
    if state != "ready":
        message = page.locator("#viewport-current ~ .pane-message").text_content()
        raise SystemExit(f"the viewer did not show the image: state {state}: {message}")
    return float(ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=100, help="images in the series (512x512 each)")
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    if not MANIFEST.is_file():
        sys.exit(f"the viewer bundle is not built ({MANIFEST}): run scripts/setup.sh")

    access = SiteAccess(role="radiologist")  # the viewer's pages are for clinicians, not for a service token
    with tempfile.TemporaryDirectory(prefix="twinpacs-viewer-bench-") as tmp:
        data_dir = Path(tmp) / "site"
        site = build_site(load_settings(overrides={"site": {"data_dir": data_dir, "name": "bench"},
                                                   "database": {"url": f"sqlite:///{data_dir / 'index.sqlite3'}"},
                                                   **access.settings()}))
        spec = StudySpec(patient_id="BENCH512", series=1, instances_per_series=args.instances, rows=512, columns=512)
        study = ""
        for ds in make_study(spec):
            site.archive.store(encode(ds), "BENCH")
            study = ds.StudyInstanceUID
        server, base = serve(create_app(site))
        url = f"{base}/viewer/{study}"
        cold, warm = [], []
        renderer = ""
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--use-angle=swiftshader", "--enable-unsafe-swiftshader"])
                for _ in range(args.runs):
                    context = browser.new_context(viewport={"width": 1600, "height": 900},
                                                  extra_http_headers=access.headers)
                    context.add_init_script(WATCH)
                    page = context.new_page()
                    cold.append(first_image_ms(page, url))
                    warm.append(first_image_ms(page, url))  # reload: bundle from the browser's cache
                    renderer = page.evaluate("() => document.getElementById('viewer').dataset.renderer")
                    context.close()
                browser.close()
        finally:
            server.should_exit = True
            site.close()

    print(f"viewer first image, 512x512 CT series of {args.instances}, {args.runs} runs, renderer {renderer}")
    for label, times in (("cold (empty browser cache)", cold), ("warm (bundle cached)", warm)):
        print(f"  {label}: median {statistics.median(times):.0f} ms  "
              f"(min {min(times):.0f}, max {max(times):.0f})")


if __name__ == "__main__":
    main()
