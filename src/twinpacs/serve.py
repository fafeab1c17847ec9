"""Run one site in the foreground: the start's fingerprint recorded (and any change since the
previous start announced) before anything listens, then the DIMSE listener, the HL7 (MLLP)
listener when a port is set, and the HTTP server, one ready line, and a clean stop on
SIGTERM/SIGINT (uvicorn traps the signals; HL7 and DIMSE stop after it)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Iterator

import uvicorn

from .app import Site, build_site
from .config import Settings
from .dimse.server import start_dimse
from .errors import ConfigurationError
from .fingerprint import record_start
from .hl7 import Hl7Listener, start_hl7
from .index.health import check_database
from .web.app import create_app

log = logging.getLogger("twinpacs")


class _HttpServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM after its own shutdown, which would kill the process before
    the DICOM listener drains; twinpacs traps the signals itself instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


# The event loop answering DICOMweb hands the GIL back and forth with the DIMSE threads, which
# are CPU-bound during an ingest; Python's default 5 ms switch interval made each hand-over of a
# retrieval wait up to 5 ms (G3). bench/during_ingest.py, 3,000 instances on 2 associations,
# two runs each: WADO-RS median during ingest 26.2/31.5 -> 25.0/23.4 ms and 17 % more
# retrievals served, ingest rate unchanged (147-162 vs 153-167 inst/s).
SWITCH_INTERVAL_S = 0.001


def freeze_startup_objects() -> None:
    """Leave what the start built (modules, the DICOM dictionary, SQLAlchemy's tables and
    statements, settings: ~150,000 objects that live as long as the process) out of Python's
    full collections. Each full collection took ~80 ms holding the GIL, and an ingest of 1,000
    objects set off two: every association and retrieval in flight stood still meanwhile (G3).
    Now one takes ~4 ms."""
    gc.collect()
    gc.freeze()


def run_site(settings: Settings, accept_missing_history: bool = False) -> None:
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    check_tls(settings)
    site = build_site(settings)
    try:
        asyncio.run(_serve(site, accept_missing_history))
    finally:
        site.close()


def report_database(site: Site) -> None:
    """The database checks of `twinpacs db check`, in the start log: a missing index or a hot
    query that would scan a whole table is said at every start, not discovered weeks later."""
    for finding in check_database(site.settings.database_url):
        if finding.level != "ok":
            log.log(logging.ERROR if finding.level == "error" else logging.WARNING,
                    "database check %s: %s (run `twinpacs db check` for all checks)", finding.check, finding.detail)


def check_tls(settings: Settings) -> None:
    """A certificate or key that cannot be read stops the start with its name, not a traceback."""
    for key in ("tls_cert_file", "tls_key_file"):
        path = getattr(settings.http, key)
        if path is not None and not path.is_file():
            raise ConfigurationError(f"http.{key}: {path} is not a readable file")


def warn_open_doors(settings: Settings) -> None:
    """Said at every start, not once: an open door must not become the forgotten normal."""
    if settings.security.anonymous_role:
        log.warning("security.anonymous_role is %r: anyone reaching the HTTP port acts as %s without signing in",
                    settings.security.anonymous_role, settings.security.anonymous_role)
    if not settings.http.tls_cert_file and settings.http.bind not in ("127.0.0.1", "::1", "localhost"):
        log.warning("HTTP on %s without TLS: passwords, tokens and images cross the network in clear; "
                    "set http.tls_cert_file and http.tls_key_file", settings.http.bind)


async def _serve(site: Site, accept_missing_history: bool = False) -> None:
    settings = site.settings
    warn_open_doors(settings)
    # Before the listeners: a start whose history is missing must not accept a single object.
    start = record_start(site, accept_missing_history)
    report_database(site)
    dimse = start_dimse(site)
    site.dicom_port = dimse.port
    for service in site.background:
        service.start()
    hl7: Hl7Listener | None = None
    try:
        if settings.hl7.port is not None:
            hl7 = await start_hl7(site)
        app = create_app(site)
        app.state.config_start = start  # what GET /api/config shows
        config = uvicorn.Config(
            app, host=settings.http.bind, port=settings.http.port,
            log_level="warning", access_log=False, lifespan="on",
            ssl_certfile=settings.http.tls_cert_file, ssl_keyfile=settings.http.tls_key_file,
        )
        server = _HttpServer(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():
            await asyncio.sleep(0.02)
        if server.started:
            freeze_startup_objects()
            http_port = server.servers[0].sockets[0].getsockname()[1]
            log.info(
                "twinpacs ready: site %s (%s), AE %s, DICOM %s:%d, HTTP %s://%s:%d, data %s%s",
                site.name, site.roles.role, site.ae_title, settings.dicom.bind, dimse.port,
                settings.http.scheme, settings.http.bind, http_port, settings.site.data_dir,
                f", HL7 {settings.hl7.bind}:{hl7.port}" if hl7 else "",
            )
        await task
        if not server.started:
            raise SystemExit(f"HTTP server could not start on {settings.http.bind}:{settings.http.port}")
    finally:
        log.info("twinpacs stopping: finishing in-flight DICOM associations and HL7 messages")
        if hl7 is not None:
            await hl7.close()
        dimse.shutdown()
        for service in reversed(site.background):
            service.stop()
        log.info("twinpacs stopped")
