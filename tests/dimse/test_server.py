"""The listener: verification, the real port, Nagle off, association limit, clean shutdown."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom import build_context
from pynetdicom.sop_class import CTImageStorage, Verification

from twinpacs.dimse import DimseServer
from twinpacs.synthetic import StudySpec, make_study

from .conftest import HOST, StartServer, association, dcmtk

ECHO = [build_context(Verification)]


def nodelay(sock: socket.socket) -> bool:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_echoscu_is_answered_on_the_port_chosen(server: DimseServer) -> None:
    assert server.port != 0
    result = dcmtk("echoscu", "-v", "-aec", "TWINPACS", HOST, server.port)
    assert "Received Echo Response (Success)" in result.stderr


def test_inbound_sockets_have_nagle_off(server: DimseServer) -> None:
    with association(server.port, ECHO):
        (acceptor,) = server.ae.active_associations
        assert nodelay(acceptor.dul.socket.socket)


def test_associations_beyond_the_limit_are_rejected(start_server: StartServer) -> None:
    server = start_server(max_associations=1)
    with association(server.port, ECHO) as first:
        assert first.send_c_echo().Status == 0x0000
        with pytest.raises(AssertionError):  # the helper asserts establishment
            with association(server.port, ECHO):
                pass


def _blocking_store(server: DimseServer, monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """Make archive.store wait for `release` once it has started (signalled by `entered`)."""
    entered, release = threading.Event(), threading.Event()
    store = server.site.archive.store

    def slow_store(data: bytes, source: str = "") -> Any:
        entered.set()
        assert release.wait(10)
        return store(data, source)

    monkeypatch.setattr(server.site.archive, "store", slow_store)
    return entered, release


def _store_in_background(server: DimseServer, results: list[Dataset]) -> threading.Thread:
    ds = make_study(StudySpec(series=1, instances_per_series=1, rows=8, columns=8))[0]

    def send() -> None:
        with association(server.port, [build_context(CTImageStorage)]) as assoc:
            results.append(assoc.send_c_store(ds))

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def _refused(port: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
        except (ConnectionRefusedError, ConnectionResetError):  # reset: closed mid-handshake
            return True
        time.sleep(0.01)
    return False


def test_shutdown_stops_accepting_and_lets_a_store_in_progress_finish(
    server: DimseServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    entered, release = _blocking_store(server, monkeypatch)
    results: list[Dataset] = []
    client = _store_in_background(server, results)
    assert entered.wait(10)
    stopping = threading.Thread(target=server.shutdown)
    stopping.start()
    assert _refused(server.port)  # no new associations while the store is still running
    release.set()
    stopping.join(10)
    client.join(10)
    assert [r.Status for r in results] == [0x0000]
    assert server.site.index.counts()["instances"] == 1


def test_a_store_cut_off_by_shutdown_is_complete_but_unacknowledged(
    server: DimseServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    entered, release = _blocking_store(server, monkeypatch)
    results: list[Dataset] = []
    client = _store_in_background(server, results)
    assert entered.wait(10)
    stopping = threading.Thread(target=server.shutdown, kwargs={"grace": 0})
    stopping.start()
    client.join(10)  # the abort reaches the client while the store is still running
    release.set()
    stopping.join(10)
    assert not stopping.is_alive()
    assert "Status" not in results[0]  # never acknowledged...
    assert server.site.index.counts()["instances"] == 1  # ...yet stored whole: the core is atomic
