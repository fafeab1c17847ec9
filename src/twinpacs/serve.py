"""Run one site in the foreground: the DIMSE listener and the HTTP server, one ready line,
and a clean stop on SIGTERM/SIGINT (uvicorn traps the signals; DIMSE stops after it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator

import uvicorn

from .app import Site, build_site
from .config import Settings
from .dimse.server import start_dimse
from .web.app import create_app

log = logging.getLogger("twinpacs")


class _HttpServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM after its own shutdown, which would kill the process before
    the DICOM listener drains; twinpacs traps the signals itself instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def run_site(settings: Settings) -> None:
    site = build_site(settings)
    try:
        asyncio.run(_serve(site))
    finally:
        site.close()


async def _serve(site: Site) -> None:
    settings = site.settings
    dimse = start_dimse(site)
    site.dicom_port = dimse.port
    for service in site.background:
        service.start()
    try:
        config = uvicorn.Config(
            create_app(site), host=settings.http.bind, port=settings.http.port,
            log_level="warning", access_log=False, lifespan="on",
        )
        server = _HttpServer(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():
            await asyncio.sleep(0.02)
        if server.started:
            http_port = server.servers[0].sockets[0].getsockname()[1]
            log.info(
                "twinpacs ready: site %s (%s), AE %s, DICOM %s:%d, HTTP http://%s:%d, data %s",
                site.name, site.roles.role, site.ae_title, settings.dicom.bind, dimse.port,
                settings.http.bind, http_port, settings.site.data_dir,
            )
        await task
        if not server.started:
            raise SystemExit(f"HTTP server could not start on {settings.http.bind}:{settings.http.port}")
    finally:
        log.info("twinpacs stopping: finishing in-flight DICOM associations")
        dimse.shutdown()
        for service in reversed(site.background):
            service.stop()
        log.info("twinpacs stopped")
