"""What every DICOM connection of this site gets when it opens, inbound or outbound.

pynetdicom offers no socket factory, but fires EVT_CONN_OPEN on both sides right after the
TCP connection exists and before the first PDU is sent: the one hook that sees every socket.
"""

from __future__ import annotations

import queue
import select
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import _config, evt
from pynetdicom.association import Association
from pynetdicom.dul import DULServiceProvider
from pynetdicom.events import Event
from pynetdicom.presentation import PresentationContext

from ..core.model import StoredInstance


class StoredFile(Dataset):
    """A stored Part 10 file to send as it is, yielded where pynetdicom wants a Dataset.

    pynetdicom 3.0.4 can stream a file without decoding it (send_c_store(path) with
    STORE_SEND_CHUNKED_DATASET), but its C-GET/C-MOVE service classes only accept a Dataset
    from the handler and re-encode it. This marker carries the path through them; the
    send_c_store installed by `on_connection_open` sends the file's own bytes."""

    def __init__(self, path: Path, instance: StoredInstance) -> None:
        super().__init__()
        self.SOPClassUID = instance.sop_class_uid  # the service class reads these on failure
        self.SOPInstanceUID = instance.sop_instance_uid
        self.path = path


RECEIVE_PDU_SIZE = 4 * 1024 * 1024


def _config_default_pdu() -> int:
    from pynetdicom._globals import DEFAULT_MAX_LENGTH
    return DEFAULT_MAX_LENGTH


def enable_stored_file_sending() -> None:
    """Process-wide pynetdicom switch: send_c_store(path) streams the file's dataset bytes
    unchanged (only with a presentation context for exactly its transfer syntax)."""
    _config.STORE_SEND_CHUNKED_DATASET = True


def on_connection_open(event: Event) -> None:
    """EVT_CONN_OPEN handler for every association, inbound and outbound."""
    sock = event.assoc.dul.socket
    if sock is not None and sock.socket is not None:
        # pynetdicom leaves Nagle on: each small PDU (C-FIND responses, C-STORE acks)
        # would otherwise wait up to 40 ms for the peer's delayed ACK.
        sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if event.assoc.is_acceptor and event.assoc.acceptor.maximum_length == _config_default_pdu():
        # Offer a large receive PDU: pynetdicom's reactor handles one PDU per loop and sleeps
        # 1 ms when idle, so a 132 kB image in 16 kB PDUs takes ~9 loops; in one PDU, one.
        event.assoc.acceptor.maximum_length = RECEIVE_PDU_SIZE
    if event.assoc.is_acceptor:
        # Only where requests are served. On an association we request, pynetdicom's send_*
        # methods pause its reactor with a check that races (association.py: the reactor
        # may take the response off the queue first); the 1 ms blind sleep is what keeps
        # that race from being hit there.
        _wake_on_events(event.assoc.dul)
    _send_stored_files(event.assoc)


class _WakingQueue(queue.Queue):  # type: ignore[type-arg]
    """The DUL's to-provider queue: a put also wakes the reactor from its idle wait."""

    def __init__(self, wake: Callable[[], None]) -> None:
        super().__init__()
        self._wake = wake

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self._wake()


class _WakingDUL(DULServiceProvider):
    """pynetdicom's DUL reactor, whose idle pause waits on the socket and on its outgoing
    queue instead of sleeping blind.

    The stock reactor handles one PDU or primitive per loop and, when a loop found nothing,
    sleeps `_run_loop_delay` (1 ms) before looking again: every incoming PDU and every
    outgoing message that arrives while it is idle waits up to 1 ms, several times per
    C-FIND and per C-GET/C-MOVE sub-operation. Here that pause is a select() on the
    connection and on a wake-up socket written by each put on the outgoing queue, with the
    same 1 ms bound (so timers, idle timeouts and shutdown are noticed as before and an idle
    association costs no more CPU): the reactor resumes as soon as there is work."""

    _IDLE_WAIT = 0.001
    _wake_r: socket.socket
    _wake_w: socket.socket

    @property  # type: ignore[override]
    def _run_loop_delay(self) -> float:
        """Read by run_reactor just before its time.sleep(): wait here, then sleep 0."""
        try:
            sock = self.socket.socket if self.socket is not None else None
            waiting = [self._wake_r] if sock is None else [sock, self._wake_r]
            ready, _, _ = select.select(waiting, [], [], self._IDLE_WAIT)
            if self._wake_r in ready:
                self._wake_r.recv(4096)
        except (OSError, ValueError):  # the connection or the wake-up pair is closed
            time.sleep(self._IDLE_WAIT)
        return 0.0

    @_run_loop_delay.setter
    def _run_loop_delay(self, value: float) -> None:
        pass

    def wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):  # already pending, or closed
            pass

    def close_wake(self) -> None:
        self._wake_r.close()
        self._wake_w.close()


def _wake_on_events(dul: DULServiceProvider) -> None:
    if type(dul) is not DULServiceProvider:
        return
    dul._wake_r, dul._wake_w = socket.socketpair()  # type: ignore[attr-defined]
    dul._wake_r.setblocking(False)  # type: ignore[attr-defined]
    dul._wake_w.setblocking(False)  # type: ignore[attr-defined]
    dul.__class__ = _WakingDUL
    old, new = dul.to_provider_queue, _WakingQueue(dul.wake)  # type: ignore[attr-defined]
    dul.to_provider_queue = new
    while True:  # anything queued before the swap (nothing, at connection open) moves over
        try:
            new.put(old.get_nowait())
        except queue.Empty:
            break


def on_connection_close(event: Event) -> None:
    dul = event.assoc.dul
    if isinstance(dul, _WakingDUL):
        dul.close_wake()


def _copy_context(self: PresentationContext, memo: dict[int, Any]) -> PresentationContext:
    """copy.deepcopy of a PresentationContext without re-validating its UIDs.

    pynetdicom deep-copies the AE's ~180 supported contexts for every inbound association;
    the generic deepcopy rebuilds each UID through pydicom's validating UID.__new__ (~30-50 ms
    per association here). UIDs are immutable strings, so sharing them is a faithful copy."""
    new = PresentationContext.__new__(PresentationContext)
    new.__dict__.update(self.__dict__)
    new._transfer_syntax = list(self._transfer_syntax)
    return new


def install_fast_context_copy() -> None:
    PresentationContext.__deepcopy__ = _copy_context  # type: ignore[attr-defined]


def _send_stored_files(assoc: Association) -> None:
    send = assoc.send_c_store

    def send_c_store(dataset: Any, *args: Any, **kwargs: Any) -> Dataset:
        if not isinstance(dataset, StoredFile):
            return send(dataset, *args, **kwargs)
        try:
            return send(dataset.path, *args, **kwargs)
        except ValueError:
            # The peer accepted no context with the stored transfer syntax: let pynetdicom
            # convert between uncompressed syntaxes (compressed ones still fail, as they must).
            return send(dcmread(dataset.path), *args, **kwargs)

    # An instance attribute: pynetdicom builds Association objects itself, so no subclass can
    # be substituted; its service classes call assoc.send_c_store and find this one. (pynetdicom
    # swaps assoc.abort the same way in service_class.attempt.)
    assoc.send_c_store = send_c_store  # type: ignore[method-assign]


CONNECTION_HANDLERS: list[tuple[evt.EventType, Callable[[Event], None]]] = [
    (evt.EVT_CONN_OPEN, on_connection_open),
    (evt.EVT_CONN_CLOSE, on_connection_close),
]
