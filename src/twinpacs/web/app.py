"""The HTTP door: health, figures, and DICOMweb (PS3.18) under /dicom-web."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from ..app import Site
from ..core.archive import utcnow
from ..errors import TwinpacsError
from . import (
    api_access_trail,
    api_audit,
    api_config,
    api_incident_reports,
    api_incidents,
    api_notices,
    api_prefetch,
    api_replication,
    api_ris,
    api_ris_sync,
    api_selftest,
    api_sync,
    dicomweb_frames,
    dicomweb_qido,
    dicomweb_stow,
    dicomweb_wado,
    login,
    metrics,
    oidc,
    pages,
    viewer,
)
from .auth import Authenticate, make_guard
from .errors import CatchAll, http_exception, twinpacs_error
from .trail_middleware import TrailMiddleware


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "site": request.app.state.site.name})


async def figures(request: Request) -> Response:
    """Counts and G2's bytes written per byte received."""
    return JSONResponse(await run_in_threadpool(request.app.state.site.archive.figures))


def create_app(site: Site) -> Starlette:
    dicomweb = [*dicomweb_stow.routes, *dicomweb_qido.routes, *dicomweb_wado.routes, *dicomweb_frames.routes]
    app = Starlette(
        routes=[
            # First: DICOMweb is the busiest door, and no other route starts with /dicom-web, so
            # the router (and web/access.py's match) find it with one comparison instead of ~100.
            Mount("/dicom-web", routes=dicomweb),
            Route("/healthz", healthz),
            *login.routes,
            *oidc.routes,
            Route("/api/figures", figures),
            *api_sync.routes,
            *api_replication.routes,
            *api_ris_sync.routes,
            *api_notices.routes,
            *api_audit.routes,
            *api_access_trail.routes,
            *api_config.routes,
            *api_selftest.routes,
            *api_ris.routes,
            *api_prefetch.routes,
            *api_incidents.routes,
            *api_incident_reports.routes,
            *metrics.routes,
            *pages.routes,
            *viewer.routes,
        ],
        # TrailMiddleware outside authentication: it records the requests authentication refuses too.
        # Authenticate: every request gets its principal and passes web/access.py, or is refused.
        middleware=[Middleware(CatchAll), Middleware(TrailMiddleware), Middleware(Authenticate)],
        exception_handlers={TwinpacsError: twinpacs_error, HTTPException: http_exception},
    )
    app.state.site = site
    app.state.guard = make_guard(site.settings.security, site.index.db, utcnow)
    app.state.oidc = oidc.make_client(site.settings.security.oidc)
    return app
