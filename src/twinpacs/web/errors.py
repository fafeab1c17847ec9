"""One JSON error shape for every HTTP error: {"error": "<human readable>", "status": <int>}.

TwinpacsError subclasses are mapped by their `http_status`; Starlette's HTTPException (unknown
route, wrong method) gets the same shape; anything else is logged and answered with a 500 that
carries no traceback."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import TwinpacsError

log = logging.getLogger(__name__)


class NotAcceptable(TwinpacsError):
    """No media type in Accept can be served without transcoding (RFC 9110 15.5.7, PS3.18 8.7)."""

    http_status = 406


class UnsupportedMediaType(TwinpacsError):
    """A request payload of a media type this origin server does not accept (PS3.18 10.5.3)."""

    http_status = 415


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


async def twinpacs_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TwinpacsError)
    if exc.http_status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
    return error_response(exc.http_status, exc.message)


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail), dict(exc.headers or {}))


class CatchAll:
    """ASGI middleware: an unexpected exception becomes a logged 500 in the JSON shape.

    Starlette's own server-error handler re-raises after answering, which would put a
    traceback in the server's output for every fault; this one answers and stops there."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if started:  # the status line is gone; the client sees a cut-off body
                raise
            response = error_response(500, "internal server error; the server log has the details")
            await response(scope, receive, send)
