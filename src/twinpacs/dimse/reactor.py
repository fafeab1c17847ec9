"""pynetdicom 3.0.4's two reactor loops per association, waking on work instead of polling.

Each association runs two threads that poll each other: the DUL reactor (socket and outgoing
PDUs) sleeps 1 ms whenever a loop found nothing, and the association reactor (incoming DIMSE
requests, release, abort) sleeps 1 ms every loop. Every hop of a message between them (request
decoded -> handler -> response sent -> next request read) waited ~0.5 ms on average, several
times per C-STORE, C-FIND and C-GET/C-MOVE sub-operation. Here both block until there is
work: the DUL in select() on its connection and a wake-up socket written whenever another
thread queues something for it; the association reactor on an Event set whenever a DIMSE
message, an A-RELEASE/A-ABORT indication or its checkpoint arrives. Both still look around
every `IDLE_WAIT` seconds for what nobody signals (ARTIM and idle timers, a dead DUL thread).

The association reactor also closes pynetdicom's race with its own send_* methods, which
matters once responses come back without delay: send_* clears `_reactor_checkpoint`, waits
for `_is_paused`, then takes the peer's response from the DIMSE queue; the stock reactor sets
`_is_paused` before it waits on the checkpoint and clears it only after, so a send_* that
starts just then proceeds while the reactor goes on to take the response itself (a Storage
Commitment N-EVENT-REPORT sent on the requester's association then never sees its answer).
Here the reactor looks at the checkpoint and takes a message under one lock that clearing the
checkpoint also takes: once clear() has returned, the reactor takes nothing until set(), so
`_is_paused` is simply always true."""

from __future__ import annotations

import queue
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from pynetdicom import evt
from pynetdicom.association import LOGGER, Association
from pynetdicom.dul import DULServiceProvider

IDLE_WAIT = 0.05  # seconds: how late timers, idle timeouts and a dead DUL thread may be noticed


class _WakingDUL(DULServiceProvider):
    """The DUL of one association; its stock reactor reads `_run_loop_delay` right before
    each idle sleep, so that read is where it waits for work (then sleeps 0)."""

    _wake_r: socket.socket
    _wake_w: socket.socket

    _waiting = False  # set before the queues are looked at, so a put after that look wakes us

    @property  # type: ignore[override]
    def _run_loop_delay(self) -> float:
        self._waiting = True
        try:
            if self.event_queue.qsize() or self.to_provider_queue.qsize() or self._kill_thread:
                return 0.0
            sock = self.socket.socket if self.socket is not None else None
            if isinstance(sock, ssl.SSLSocket) and sock.pending():
                return 0.0  # decrypted bytes already buffered: select() would not see them
            ready, _, _ = select.select([self._wake_r] if sock is None else [sock, self._wake_r], [], [], IDLE_WAIT)
            if self._wake_r in ready:
                self._wake_r.recv(4096)
        except (OSError, ValueError):  # the connection or the wake-up pair is closed
            return 0.001  # pynetdicom's own delay
        finally:
            self._waiting = False
        return 0.0

    @_run_loop_delay.setter
    def _run_loop_delay(self, value: float) -> None:
        pass  # set once by DULServiceProvider.__init__; the wait above replaces it

    def wake(self) -> None:
        """Called after a put on the DUL's queues: end the reactor's wait, if it waits (a
        system call per PDU would also hand the GIL around in the middle of a message)."""
        if not self._waiting or threading.current_thread() is self:
            return
        try:
            self._wake_w.send(b"\0")
        except OSError:  # a wake-up already pending (buffer full), or the pair is closed
            pass

    def kill_dul(self) -> None:
        super().kill_dul()
        self.wake()

    def stop_dul(self) -> bool:
        """As pynetdicom's, but wakes the reactor and joins it instead of polling."""
        if self.state_machine.current_state != "Sta1":
            return False
        self._kill_thread = True
        self.wake()
        self.join()
        return True

    def close_wake(self) -> None:
        self._wake_r.close()
        self._wake_w.close()


class _Checkpoint(threading.Event):
    """Association._reactor_checkpoint: cleared by send_* (and release) to take the
    association's incoming messages for themselves, set when they are done."""

    def __init__(self, wake: threading.Event) -> None:
        super().__init__()
        self.lock = threading.RLock()  # reentrant: the reactor's own handlers call send_*
        self._wake = wake
        super().set()

    def clear(self) -> None:
        with self.lock:  # waits until the reactor is not looking at the message queue
            super().clear()

    def set(self) -> None:
        super().set()
        self._wake.set()


def _notify_on_put(q: queue.Queue[Any], notify: Callable[[], None]) -> None:
    put = q.put

    def put_and_notify(item: Any, block: bool = True, timeout: float | None = None) -> None:
        put(item, block, timeout)
        notify()

    q.put = put_and_notify  # type: ignore[method-assign]


class _WakingAssociation(Association):
    """An association whose reactor runs when woken (see the module docstring)."""

    _wake: threading.Event
    _reactor_checkpoint: _Checkpoint

    @property  # type: ignore[override]
    def _is_paused(self) -> bool:
        """What send_* wait for before they take the incoming messages: always so here, as the
        reactor takes none once the checkpoint is cleared. pynetdicom also writes it (its
        N-EVENT-REPORT handler thread, say); that says nothing about this reactor."""
        return True

    @_is_paused.setter
    def _is_paused(self, value: bool) -> None:
        pass

    def kill(self) -> None:
        """Association.kill, looking every 1 ms rather than 10 whether the DUL has reached
        Sta1: each C-MOVE's final response waited for its sub-association's release here."""
        self._reactor_checkpoint.set()
        self._kill = True
        self.is_established = False
        while self.dul.is_alive() and not self.dul.stop_dul():
            time.sleep(0.001)
        self._wake.set()
        if not self.dul.is_alive():
            cast(_WakingDUL, self.dul).close_wake()

    def _run_reactor(self) -> None:
        """Association._run_reactor with the same steps in the same order, run when woken."""
        checkpoint = self._reactor_checkpoint
        while not self._kill:
            self._wake.clear()  # before looking: a put from now on ends the next wait
            with checkpoint.lock:
                owned = not checkpoint.is_set()  # by a send_*, whose set() wakes us
                context_id, msg = (None, None) if owned else self.dimse.get_msg(block=False)
            if owned:
                self._wake.wait(IDLE_WAIT)
                continue
            if msg:
                self._serve_request(msg, cast(int, context_id))
            with checkpoint.lock:
                if checkpoint.is_set() and self._ended():
                    return
            if not msg:
                self._wake.wait(IDLE_WAIT)

    def _ended(self) -> bool:
        """The rest of pynetdicom's loop body: release, abort, dead DUL, network timeout."""
        if self.is_established and self.acse.is_release_requested():
            self.acse.send_release(is_response=True)
            LOGGER.info("Association Released")
            self.is_released = True
            self.is_established = False
            evt.trigger(self, evt.EVT_RELEASED, {})
            self.kill()
            return True
        if self.acse.is_aborted():
            LOGGER.info("Association Aborted" + (" (A-P-ABORT)" if self.acse.is_aborted("a-p-abort") else ""))
            self.dul.receive_pdu(wait=False)  # so that EVT_ACSE_RECV fires for subscribers
            self.is_aborted = True
            self.is_established = False
            evt.trigger(self, evt.EVT_ABORTED, {})
            self.kill()
            return True
        if not self.dul.is_alive():
            self.kill()
            return True
        if self.dul.idle_timer_expired():
            LOGGER.error("Network timeout reached")
            if self.network_timeout_response == "A-RELEASE":
                self.release()
            else:
                self.abort()
            self.kill()
            return True
        return False


def install(assoc: Association) -> None:
    """From EVT_CONN_OPEN: before the association reactor starts (both roles) and before
    (acceptor) or while (requestor, inside its connect) the DUL reactor runs. Both objects
    change class in place: pynetdicom builds them itself, and a running stock loop looks up
    `_run_loop_delay` and `_run_reactor` again each time."""
    dul = assoc.dul
    if type(dul) is not DULServiceProvider or type(assoc) is not Association:
        return
    dul.__class__ = _WakingDUL
    waking_dul = cast(_WakingDUL, dul)
    waking_dul._wake_r, waking_dul._wake_w = socket.socketpair()
    waking_dul._wake_r.setblocking(False)
    waking_dul._wake_w.setblocking(False)
    _notify_on_put(dul.to_provider_queue, waking_dul.wake)
    _notify_on_put(dul.event_queue, waking_dul.wake)

    assoc.__class__ = _WakingAssociation
    waking = cast(_WakingAssociation, assoc)
    waking._wake = threading.Event()
    waking._reactor_checkpoint = _Checkpoint(waking._wake)
    _notify_on_put(assoc.dimse.msg_queue, waking._wake.set)
    _notify_on_put(dul.to_user_queue, waking._wake.set)  # A-RELEASE and A-ABORT indications
