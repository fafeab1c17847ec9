"""Screenshots of the pages for the README: the page tests' two-site world (tests/pages/world.py)
served on loopback ports, opened in Debian's Chromium through Playwright, saved as PNGs.

    .venv/bin/python scripts/screenshots.py [--out docs] [--all]

writes worklist.png, study.png and sync.png (with --all, every page) into --out."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the world is the tests' own: the same data the tests check

from tests.browser import CHROMIUM  # noqa: E402
from tests.pages.world import build_world  # noqa: E402


def pages(uids: dict[str, str]) -> dict[str, str]:
    return {"worklist": "/", "study": f"/studies/{uids['stat']}", "sync": "/admin/sync",
            "failover": "/admin/failover", "notices": "/admin/notices", "reconciliation": "/admin/reconciliation",
            "mismatch": f"/studies/{uids['mismatch']}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--all", action="store_true", help="every page, not only the three the README shows")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        world = build_world(Path(tmp), plain=True)
        try:
            wanted = pages(world.uids)
            if not args.all:
                wanted = {k: wanted[k] for k in ("worklist", "study", "sync")}
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
                page = browser.new_page(viewport={"width": 1360, "height": 900})
                for name, path in wanted.items():
                    page.goto(world.url_a + path)
                    page.wait_for_load_state("networkidle")  # thumbnails loaded
                    page.screenshot(path=str(args.out / f"{name}.png"), full_page=True)
                    print(f"screenshots: {args.out / (name + '.png')}")
                browser.close()
        finally:
            world.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
