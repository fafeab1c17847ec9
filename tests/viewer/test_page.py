"""The viewer page as served (no browser): the bundle named by Vite's manifest, the UIDs as data
attributes, the banner; a clear 400 for a malformed UID and a clear 503 when the bundle is not
built."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from twinpacs.app import Site, build_site
from twinpacs.config import load_settings
from twinpacs.web import create_app, viewer
from tests.backend import backend_url

pytestmark = pytest.mark.anyio
STUDY, PRIOR = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    data_dir = tmp_path / "site"
    built = build_site(load_settings(overrides={"site": {"data_dir": data_dir, "name": "viewer-page"},
                                                "database": {"url": backend_url(data_dir)}}))
    yield built
    built.close()


@pytest.fixture
async def client(site: Site) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(site)),
                                 base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture
def built_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in manifest, so these tests do not depend on the real build."""
    manifest = tmp_path / "viewer" / ".vite" / "manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text('{"src/main.ts": {"file": "assets/main-abc.js", "css": ["assets/main-def.css"]}}')
    monkeypatch.setattr(viewer, "MANIFEST", manifest)
    return manifest


async def test_page_loads_the_built_bundle_with_the_uids(client: httpx.AsyncClient, built_bundle: Path) -> None:
    response = await client.get(f"/viewer/{STUDY}", params={"prior": PRIOR})
    assert response.status_code == 200
    html = response.text
    assert f'data-study="{STUDY}"' in html and f'data-prior="{PRIOR}"' in html
    assert '<script type="module" src="/viewer-assets/assets/main-abc.js"' in html
    assert '<link rel="stylesheet" href="/viewer-assets/assets/main-def.css">' in html
    assert "Loading the viewer" in html  # what shows until (or unless) the bundle runs


async def test_page_shows_active_notices(client: httpx.AsyncClient, built_bundle: Path) -> None:
    posted = await client.post("/api/notices", json={"title": "Failover <now>", "severity": "critical"})
    assert posted.status_code in (200, 201), posted.text
    html = (await client.get(f"/viewer/{STUDY}")).text
    assert 'class="twinpacs-banner"' in html and "Failover &lt;now&gt;" in html


@pytest.mark.parametrize("path", ["/viewer/1.2.x", f"/viewer/{STUDY}?prior=<script>", "/viewer/1." + "2" * 70])
async def test_malformed_uid_is_a_clear_400(client: httpx.AsyncClient, built_bundle: Path, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 400
    assert "is not a DICOM UID" in response.text and "<script>" not in response.text


async def test_missing_bundle_says_how_to_build_it(client: httpx.AsyncClient, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(viewer, "MANIFEST", tmp_path / "nothing" / "manifest.json")
    response = await client.get(f"/viewer/{STUDY}")
    assert response.status_code == 503
    assert "scripts/setup.sh" in response.text and "Node.js 20" in response.text
