"""Reading a request body within bounds: refused (413) from its Content-Length or at the first
byte past the limit (a chunked body declares no length), and 408 when the sender goes silent in
the middle of it. Nothing is stored from a refused body: the handler sees the error before it
has a whole body to act on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.requests import Request

from ..errors import TwinpacsError


class PayloadTooLarge(TwinpacsError):
    """A request body over its limit (RFC 9110 15.5.14)."""

    http_status = 413


class BodyTimeout(TwinpacsError):
    """The sender stopped sending in the middle of a body (RFC 9110 15.5.9)."""

    http_status = 408


async def bounded_body(request: Request, limit: int, timeout: float, setting: str) -> AsyncIterator[bytes]:
    """The body's chunks; PayloadTooLarge past `limit` bytes (naming `setting`, the key that sets
    it), BodyTimeout after `timeout` seconds without a chunk."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(_too_large(limit, setting))
    received = 0
    chunks = request.stream()
    while True:
        try:
            async with asyncio.timeout(timeout):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise BodyTimeout(f"no part of the body arrived for {timeout:g} s; nothing was stored") from None
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(_too_large(limit, setting))
        yield chunk


async def read_bounded(request: Request, limit: int, timeout: float, setting: str) -> bytes:
    return b"".join([chunk async for chunk in bounded_body(request, limit, timeout, setting)])


def _too_large(limit: int, setting: str) -> str:
    return f"the request body is larger than this site accepts ({limit} bytes, {setting}); nothing was stored"
