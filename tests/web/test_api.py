"""Health, figures, the one error shape, and reads that never wait for a store (G3)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import anyio
import httpx
import pytest

from tests.web.conftest import assert_error, instances_held, stow
from twinpacs.app import Site
from twinpacs.core.archive import StoreResult

pytestmark = pytest.mark.anyio


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.json() == {"status": "ok", "site": "web-test"}


async def test_figures(client: httpx.AsyncClient, site: Site, study: list[bytes]) -> None:
    empty = (await client.get("/api/figures")).json()
    assert empty["instances"] == 0 and empty["bytes_written_per_byte_received"] == 0.0
    site.archive.store(study[0])
    site.archive.store(study[0])
    figures = (await client.get("/api/figures")).json()
    assert figures["instances"] == 1 and figures["bytes_received"] == 2 * len(study[0])
    assert figures["bytes_written_per_byte_received"] == 0.5


async def test_routing_errors_have_the_shape(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/no/such/page"), 404)
    assert_error(await client.delete("/dicom-web/studies"), 405)


async def test_unexpected_errors_are_500_without_details(client: httpx.AsyncClient, site: Site,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    def broken(query: object) -> list[dict[str, str]]:
        raise RuntimeError("secret database detail")

    monkeypatch.setattr(site.archive, "find", broken)
    with caplog.at_level(logging.ERROR):
        response = await client.get("/dicom-web/studies")
    text = assert_error(response, 500)
    assert "secret" not in response.text and "Traceback" not in response.text and "log" in text
    assert "secret database detail" in caplog.text  # logged for the operator


async def test_reads_are_served_while_a_store_is_running(client: httpx.AsyncClient, site: Site,
                                                          study: list[bytes],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """G3: a STOW-RS blocked inside Archive.store_many holds a worker thread, not the event loop."""
    site.archive.store(study[0])
    entered, release = threading.Event(), threading.Event()
    real_store = site.archive.store_many

    def slow_store(datas: list[bytes], *args: Any) -> list[StoreResult | Exception]:
        entered.set()
        release.wait(10)
        return real_store(datas, *args)

    monkeypatch.setattr(site.archive, "store_many", slow_store)
    results: dict[str, httpx.Response] = {}

    async def run_stow() -> None:
        results["stow"] = await stow(client, study[1:])

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(run_stow)
        await anyio.to_thread.run_sync(entered.wait, 10)
        with anyio.fail_after(5):
            assert (await client.get("/healthz")).status_code == 200
            assert len((await client.get("/dicom-web/studies")).json()) == 1
            assert len((await client.get("/dicom-web/instances")).json()) == 1
            study_uid = (await client.get("/dicom-web/studies")).json()[0]["0020000D"]["Value"][0]
            assert (await client.get(f"/dicom-web/studies/{study_uid}")).status_code == 200
        assert "stow" not in results  # still storing all the while
        release.set()
    assert results["stow"].status_code == 200 and instances_held(site) == 6
