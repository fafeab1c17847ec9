"""What every server-rendered page shares: the Jinja2 environment (autoescape on, so every value
from data is escaped), the page shell (site, role, the downtime banner, standby and peer-down
messages, navigation), and the error page a handler's failure becomes: never a blank page or a
traceback, always a message saying what is happening."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import cache, wraps
from html import escape
from pathlib import Path
from typing import Any

import httpx
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from ..app import Site
from ..core.reconcile import local_zone
from ..errors import TwinpacsError
from .access import may_open
from .banner import active_notices, render_banner

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
PEER_PROBE_S = 1.0  # a peer that does not answer /healthz within this is shown as down
NAV = (("/", "Worklist"), ("/admin/sync", "Sync"), ("/admin/failover", "Failover"),
       ("/admin/notices", "Notices"), ("/admin/config", "Configuration"), ("/admin/selftest", "Self-test"),
       ("/admin/reconciliation", "Reconciliation"), ("/admin/incidents", "Incidents"),
       ("/incidents/new", "Report an incident"))
API_LINKS = (("/api/sync", "Sync (JSON)"), ("/api/notices", "Notices (JSON)"),
             ("/dicom-web/studies", "Studies (QIDO-RS)"), ("/metrics", "Metrics"))

Handler = Callable[[Request], Awaitable[Response]]


def dicom_date(value: str) -> str:
    """YYYYMMDD -> YYYY-MM-DD; anything else as it is."""
    value = (value or "").strip()
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 and value.isdigit() else value


def person_name(value: str) -> str:
    """DICOM PN 'Family^Given^Middle' -> 'Family, Given Middle' (the alphabetic group only)."""
    family, _, rest = (value or "").split("=")[0].partition("^")
    given = " ".join(p for p in rest.split("^") if p)
    return f"{family}, {given}" if family and given else family or given


def duration(seconds: float | None) -> str:
    """Seconds as the largest two units ('3 min 20 s'); '-' for none."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{whole} s"
    parts = [(whole // 86400, "d"), (whole // 3600 % 24, "h"), (whole // 60 % 60, "min"), (whole % 60, "s")]
    shown = [(n, unit) for n, unit in parts if n][:2]
    return " ".join(f"{n} {unit}" for n, unit in shown)


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(dicom_date=dicom_date, person_name=person_name, duration=duration)
    env.globals["may_open"] = may_open  # the navigation shows only the pages the user's role may open
    return env


templates = Jinja2Templates(env=_environment())


@dataclass(frozen=True)
class PeerHealth:
    name: str
    url: str
    up: bool
    problem: str


async def _probe(client: httpx.AsyncClient, name: str, url: str) -> PeerHealth:
    try:
        response = await client.get(f"{url}/healthz")
    except httpx.HTTPError as exc:
        return PeerHealth(name, url, False, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    if response.status_code != 200:
        return PeerHealth(name, url, False, f"/healthz answered HTTP {response.status_code}")
    return PeerHealth(name, url, True, "")


@cache
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()  # loading the CA bundle takes tens of ms: once, not per page


async def peer_health(site: Site) -> list[PeerHealth]:
    """Each twinpacs peer asked for /healthz, all at once (a DIMSE peer is not probed: its
    trouble shows in the sync figures' last error)."""
    peers = [(p.name, p.base_url) for p in site.settings.peers if p.kind == "twinpacs" and p.base_url]
    if not peers:
        return []
    async with httpx.AsyncClient(timeout=PEER_PROBE_S, verify=_tls()) as client:
        return list(await asyncio.gather(*(_probe(client, name, url) for name, url in peers)))


def zone(site: Site) -> tzinfo | None:
    """The hospital's time zone ([hl7] timezone); None: this machine's."""
    return local_zone(site.settings.hl7.timezone)


def local_time(site: Site, value: datetime | None) -> str:
    return value.astimezone(zone(site)).strftime("%Y-%m-%d %H:%M") if value else ""


def peer_url(site: Site, name: str) -> str:
    """The HTTP base URL of a twinpacs peer named `name`; '' when it is not one."""
    return next((p.base_url for p in site.settings.peers if p.name == name and p.kind == "twinpacs"), "")


async def _shell(request: Request) -> dict[str, Any]:
    """The page shell's values. Each part that cannot be read says so instead of failing the page."""
    site: Site = request.app.state.site
    problems: list[str] = []
    try:
        banner = render_banner(await active_notices(site))  # escapes every value; the template marks it safe
    except Exception as exc:
        log.exception("pages: notices could not be read")
        banner, problems = "", [f"The downtime notices could not be read ({type(exc).__name__}); "
                                        "check /api/notices or the server log."]
    active = site.roles.active_site
    return {
        "site_name": site.name, "role": site.roles.role, "active_site": active,
        "active_url": peer_url(site, active) if active and active != site.name else "",
        "peers_down": [p for p in await peer_health(site) if not p.up],
        "banner": banner, "shell_problems": problems, "nav": NAV, "api_links": API_LINKS,
        "path": request.url.path, "refresh_s": 0,
    }


async def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    return templates.TemplateResponse(request, name, {**await _shell(request), **context}, status_code=status_code)


async def error_page(request: Request, status_code: int, title: str, message: str) -> Response:
    try:
        return await render(request, "error.html", {"title": title, "message": message}, status_code)
    except Exception:  # the shell itself failed: the plainest page that still says what happened
        log.exception("pages: the error page could not be rendered")
        text = f"<!doctype html><title>twinpacs: error</title><h1>{escape(title)}</h1><p>{escape(message)}</p>"
        return Response(text, status_code=status_code, media_type="text/html")


def page(handler: Handler) -> Handler:
    """A page handler whose failures become HTML error pages: a twinpacs error (bad filter, not
    found, ...) with its status and message, anything else a logged 500."""
    @wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except TwinpacsError as exc:
            titles = {400: "Bad request", 404: "Not found", 409: "Refused", 503: "Unavailable"}
            return await error_page(request, exc.http_status, titles.get(exc.http_status, "Error"), exc.message)
        except Exception:
            log.exception("pages: %s %s failed", request.method, request.url.path)
            return await error_page(request, 500, "Internal error",
                                    "This page could not be built; the server log has the details.")
    return wrapped

