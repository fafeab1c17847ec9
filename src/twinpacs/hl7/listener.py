"""The MLLP listener of the HL7 door, on the asyncio loop `twinpacs serve` runs (python-hl7's
hl7.mllp server underneath). Its read loop is twinpacs's own, so that framing errors are
answered, not fatal: a connection stays open across messages, every frame (<VT> message
<FS><CR>) gets exactly one ACK, and a frame that is not a message, or is longer than
limits.hl7_max_message_bytes, gets an AR instead of a dropped connection (the overlong frame is
skipped, never held in memory). A connection may idle between messages as long as it likes,
but a message begun and not finished within limits.request_timeout_s closes the connection,
nothing of it applied. The index work runs in a thread, off the event loop."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from hl7.mllp import HL7StreamReader, HL7StreamWriter, start_hl7_server

from ..core.archive import utcnow
from ..errors import ConfigurationError
from ..index.hl7_log import Hl7Log
from .messages import Hl7Handler

if TYPE_CHECKING:
    from ..app import Site

log = logging.getLogger(__name__)

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
CLOSE_WAIT_S = 10.0  # at close, how long a message being applied may take to get its ACK out
# Sent only if building the real acknowledgement failed (a bug): the sender is never left waiting.
_LAST_RESORT_AR = (b"MSH|^~\\&|TWINPACS||||||ACK|0|P|2.5\rMSA|AR||internal error\r"
                   b"ERR|||207^Application internal error^HL70357|E")


@dataclass
class _Connection:
    writer: HL7StreamWriter
    busy: bool = False  # a message is being applied: close waits for its ACK


class Hl7Listener:
    def __init__(self, handler: Hl7Handler, max_message: int, timeout: float) -> None:
        self.handler = handler
        self.max_message = max_message
        self.timeout = timeout
        self.server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], _Connection] = {}
        self._closing = False

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop accepting; idle connections close now, busy ones after sending their ACK."""
        self._closing = True
        if self.server is not None:
            self.server.close()
        for connection in self._connections.values():
            if not connection.busy:
                connection.writer.close()
        if self._connections:
            _, pending = await asyncio.wait(list(self._connections), timeout=CLOSE_WAIT_S)
            for task in pending:
                task.cancel()
        if self.server is not None:
            await self.server.wait_closed()

    async def serve_connection(self, reader: HL7StreamReader, writer: HL7StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connection = self._connections[task] = _Connection(writer)
        peer = writer.get_extra_info("peername")
        remote = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer or "")
        try:
            while not self._closing:
                first = await reader.readexactly(1)  # waiting for a message has no time limit
                if first in b" \t\r\n":  # some senders put a line break between frames
                    continue
                try:
                    async with asyncio.timeout(self.timeout):
                        try:
                            block: bytes | None = first + await reader.readuntil(END_BLOCK)
                        except asyncio.LimitOverrunError:
                            await _skip_frame(reader)
                            block = None
                except TimeoutError:
                    log.warning("HL7 connection from %s closed: a message was begun and not finished within "
                                "%g s (limits.request_timeout_s); nothing of it was applied", remote, self.timeout)
                    return
                connection.busy = True
                try:
                    ack = await self._ack(block, remote)
                except Exception:  # a bug must still not leave the sender without an answer
                    log.exception("HL7 frame from %s: no acknowledgement could be built", remote)
                    ack = _LAST_RESORT_AR
                writer.writeblock(ack)
                await writer.drain()
                connection.busy = False
        except asyncio.IncompleteReadError as exc:  # the sender closed the connection
            if exc.partial.strip():
                log.warning("HL7 connection from %s closed inside a frame (%d bytes, no end of block): "
                            "nothing of it was applied", remote, len(exc.partial))
        except ConnectionError as exc:
            log.warning("HL7 connection from %s lost: %s", remote, exc)
        finally:
            del self._connections[task]
            writer.close()

    async def _ack(self, block: bytes | None, remote: str) -> bytes:
        if block is None:
            return await asyncio.to_thread(self.handler.refuse, b"", remote,
                                           f"the message is longer than {self.max_message} bytes; it was not read")
        frame = block[:-len(END_BLOCK)]
        if not frame.startswith(START_BLOCK):
            return await asyncio.to_thread(self.handler.refuse, frame, remote,
                                           "not an MLLP frame: it does not begin with <VT> (0x0B)")
        return await asyncio.to_thread(self.handler.handle, frame[len(START_BLOCK):], remote)


async def _skip_frame(reader: HL7StreamReader) -> None:
    """Drop the rest of an overlong frame, up to and with its end of block."""
    while True:
        try:
            await reader.readuntil(END_BLOCK)
            return
        except asyncio.LimitOverrunError as exc:
            await reader.readexactly(exc.consumed)


def time_zone(name: str) -> tzinfo | None:
    """[hl7] timezone: the zone of HL7 times without an offset; None: the machine's own."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):  # ZoneInfoNotFoundError is a KeyError
        raise ConfigurationError(f"[hl7] timezone = {name!r} is not an IANA time zone such as Europe/Oslo") from None


async def start_hl7(site: Site) -> Hl7Listener:
    """Listen for MLLP on hl7.bind:hl7.port (0 or unset: a free port) on the running loop."""
    settings = site.settings.hl7
    handler = Hl7Handler(site.ris, Hl7Log(site.index.db), site.settings.ris.order_fields,
                         time_zone(settings.timezone), utcnow, site.access_trail)
    limits = site.settings.limits
    listener = Hl7Listener(handler, limits.hl7_max_message_bytes, limits.request_timeout_s)
    port = settings.port or 0
    try:
        listener.server = await start_hl7_server(listener.serve_connection, settings.bind, port,
                                                 limit=limits.hl7_max_message_bytes)
    except OSError as exc:
        raise ConfigurationError(f"the HL7 listener cannot listen on {settings.bind}:{port}: "
                                 f"{exc.strerror or exc}") from None
    log.info("HL7 (MLLP) listening on %s:%d", settings.bind, listener.port)
    return listener
