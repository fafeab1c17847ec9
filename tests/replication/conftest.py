"""Two real sites in this process: each an index and store of its own, its HTTP door served by
uvicorn on a loopback port, and its replication worker. Helpers wait by polling, never by sleeping
a fixed time."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from twinpacs.app import Site, build_site
from twinpacs.config import load_settings
from twinpacs.index.schema import instances, outbox
from twinpacs.synthetic import StudySpec, encode, make_study
from tests.backend import backend_url
from tests.served import ServedApp

HOST = "127.0.0.1"
# Short retries so that a test sees several attempts within a second.
FAST = {"batch_size": 5, "retry_initial_s": 0.05, "retry_max_s": 0.2, "give_up_after": 1000}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
    return found


Http = ServedApp  # kept short: the tests read as 'serve a site's HTTP door'


def settings_overrides(root: Path, name: str, peers: list[dict[str, Any]], dicom: dict[str, Any],
                       replication: dict[str, Any]) -> dict[str, Any]:
    return {"site": {"data_dir": root / name, "name": name, "ae_title": name}, "dicom": {"port": 0, **dicom},
            "database": {"url": backend_url(root / name)},
            "peers": peers, "replication": {**FAST, **replication}}


def twinpacs_peer(name: str, port: int) -> dict[str, Any]:
    return {"name": name, "dicomweb_url": f"http://{HOST}:{port}/dicom-web"}


class Sites:
    """Builds sites in the test's folder and stops and closes every one at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.built: list[Site] = []
        self.servers: list[Http] = []

    def build(self, name: str, peers: list[dict[str, Any]], dicom: dict[str, Any] | None = None,
              **replication: Any) -> Site:
        overrides = settings_overrides(self.root, name, peers, dicom or {}, replication)
        site = build_site(load_settings(overrides=overrides))
        self.built.append(site)
        return site

    def serve(self, site: Site, port: int = 0) -> Http:
        self.servers.append(Http(site, port))
        return self.servers[-1]

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        for server in self.servers:
            server.thread.join(10)
        for site in self.built:
            for service in site.background:
                service.stop()
            site.close()


@pytest.fixture
def sites(tmp_path: Path) -> Iterator[Sites]:
    made = Sites(tmp_path)
    yield made
    made.close()


def objects(count: int, seed: int = 1, patient: str = "REPL") -> list[bytes]:
    spec = StudySpec(patient_id=f"{patient}{seed}", series=1, instances_per_series=count, rows=8, columns=8, seed=seed)
    return [encode(ds) for ds in make_study(spec)]


def rows(site: Site) -> list[dict[str, Any]]:
    with site.index.db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(outbox).order_by(outbox.c.id))]


def states(site: Site) -> Counter[str]:
    return Counter(r["state"] for r in rows(site))


def held(site: Site) -> dict[str, str]:
    """SOP Instance UID -> content hash of every current instance."""
    with site.index.db.read() as conn:
        return dict(conn.execute(select(instances.c.SOPInstanceUID, instances.c.content_hash)).all())


class Proxy:
    """A TCP relay in front of a peer, so a test can cut every connection at once (the
    peer's end dies mid-transfer: A's request ends without an answer) and later relay again."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.listener = socket.create_server((HOST, 0))
        self.port = int(self.listener.getsockname()[1])
        self.open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
                upstream = socket.create_connection((HOST, self.target))
            except OSError:
                return  # cut
            with self._lock:
                self.open += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def cut(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)  # close() alone leaves a blocked accept() running
        self.listener.close()
        with self._lock:
            for sock in self.open:
                with contextlib.suppress(OSError):  # already closed by its other end
                    sock.shutdown(socket.SHUT_RDWR)  # wakes the relay threads blocked on it
                sock.close()
            self.open.clear()

    def resume(self, target: int) -> None:
        self.target = target
        self.listener = socket.create_server((HOST, self.port))
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()
