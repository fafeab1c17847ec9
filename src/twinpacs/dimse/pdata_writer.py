"""A DIMSE message's P-DATA-TF PDUs written to the socket by the thread that sends it.

pynetdicom sends each PDU of a message through its DUL: a P_DATA primitive on the DUL's
queue, a wake-up of the DUL thread, its state machine (Sta6 + Evt9: action DT-1), encoding,
send. A 132 kB image in DCMTK getscu's 16 kB PDUs made nine such trips, each handing the GIL
between two threads, and every C-STORE or C-FIND response one. In the data transfer state
DT-1 does nothing but send, so here the message's PDUs (PS3.8 9.3.5) are written at once,
under a lock that the DUL's own sends take too, so nothing interleaves inside a PDU.

The stock path is kept whenever this could change what the peer sees or what pynetdicom
knows: outside Sta6, while PDUs queued the stock way are still unsent (the order of the
bytes on the wire must be the order of the messages), and when a handler watches sent PDUs
or data (EVT_PDU_SENT, EVT_DATA_SENT), unless it is marked `watches_only_n_messages`:
DIMSE-N messages are never written here."""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pynetdicom import evt
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.pdu_primitives import P_DATA

BATCH = 1 << 20  # bytes per sendall: a large file is streamed, never held whole in memory
_HEADER = struct.Struct(">BBIIB")  # PDU type, reserved, PDU length, PDV item length, context ID
F = TypeVar("F", bound=Callable[..., Any])


def pdu_header(context_id: int, pdv_length: int) -> bytes:
    """What precedes a PDV (message control header + fragment) in a P-DATA-TF of its own."""
    return _HEADER.pack(0x04, 0, pdv_length + 5, pdv_length + 1, context_id)


def watches_only_n_messages(handler: F) -> F:
    """Mark an EVT_PDU_SENT handler that looks only at DIMSE-N messages (N-ACTION, N-EVENT-
    REPORT): those always go the stock way, so it sees every PDU it is interested in."""
    handler.watches_only_n_messages = True  # type: ignore[attr-defined]
    return handler


def _watched(dul: DULServiceProvider) -> bool:
    """Whether a handler may want to see the PDUs or data written here."""
    pdu_watchers = dul.assoc.get_handlers(evt.EVT_PDU_SENT)
    return bool(dul.assoc.get_handlers(evt.EVT_DATA_SENT)) or \
        not all(getattr(handler, "watches_only_n_messages", False) for handler, _ in pdu_watchers)


class PDataWriter:
    def __init__(self, dul: DULServiceProvider) -> None:
        self._dul = dul
        self._lock = threading.Lock()  # one writer on the socket at a time
        self._queued = 0  # P-DATA handed to the DUL's queue and not sent yet
        stock_send, stock_send_pdu = dul._send, dul.send_pdu

        def send_pdu(primitive: object) -> None:
            if isinstance(primitive, P_DATA):
                with self._lock:
                    self._queued += 1
            stock_send_pdu(primitive)  # type: ignore[arg-type]

        def send(pdu: object) -> None:
            with self._lock:
                try:
                    stock_send(pdu)  # type: ignore[arg-type]
                finally:
                    if isinstance(pdu, P_DATA_TF):
                        self._queued -= 1

        dul.send_pdu = send_pdu  # type: ignore[method-assign]
        dul._send = send  # type: ignore[method-assign]

    def write(self, context_id: int, pdvs: Iterable[bytes]) -> bool:
        """Write one message, each PDV in a PDU of its own; False (nothing written) when the
        message must go the stock way. A failed write ends the connection as pynetdicom's
        own send does (Evt17)."""
        dul = self._dul
        sock = dul.socket
        if sock is None or sock.socket is None or dul.state_machine.current_state != "Sta6" or _watched(dul):
            return False
        with self._lock:
            if self._queued:
                return False
            try:
                batch: list[bytes] = []
                size = 0
                for pdv in pdvs:
                    batch += [pdu_header(context_id, len(pdv)), pdv]
                    size += len(pdv) + 11
                    if size >= BATCH:
                        sock.socket.sendall(b"".join(batch))
                        batch, size = [], 0
                if batch:
                    sock.socket.sendall(b"".join(batch))
            except OSError:
                dul.event_queue.put("Evt17")  # transport connection closed
        return True
