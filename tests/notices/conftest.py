"""A site with a peer (so stores queue replication rows) and a webhook, a local webhook
receiver, and the site's app in process (ASGI) or live (uvicorn in a thread, port 0)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from twinpacs.app import Site, build_site
from twinpacs.config import load_settings
from tests.backend import backend_url
from tests.served import ServedApp


@dataclass
class Receiver:
    """A tiny webhook endpoint on 127.0.0.1: answers `fail_first` requests with 500, then 204."""

    fail_first: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)  # every request, failed or not
    delivered: list[dict[str, Any]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    hold: threading.Event | None = None  # when set up, requests wait for it (a slow webhook)
    url: str = ""

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        while len(self.delivered) < count:
            assert self.arrived.wait(timeout_s), f"webhook got {len(self.delivered)} of {count} deliveries"
            self.arrived.clear()
        return self.delivered


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if state.hold is not None:
                state.hold.wait(10)
            state.requests.append(payload)
            failing = len(state.requests) <= state.fail_first
            if not failing:  # recorded before answering: the sender's wait() then sees it
                state.delivered.append(payload)
                state.arrived.set()
            self.send_response(500 if failing else 204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    if state.hold is not None:
        state.hold.set()
    server.shutdown()
    server.server_close()


def make_site(data_dir: Path, webhooks: list[str] | None = None) -> Site:
    return build_site(load_settings(overrides={
        "site": {"data_dir": data_dir, "name": "A"},
        "database": {"url": backend_url(data_dir)},
        "peers": [{"name": "B", "dicomweb_url": "http://127.0.0.1:9/dicom-web"}],
        "notices": {"webhooks": webhooks or []},
    }))


@pytest.fixture
def site(tmp_path: Path, receiver: Receiver) -> Iterator[Site]:
    built = make_site(tmp_path / "a", [receiver.url])
    yield built
    built.close()


@pytest.fixture
def live_url(site: Site) -> Iterator[str]:
    """The site's app served by uvicorn on 127.0.0.1, a port of its own choosing."""
    served = ServedApp(site)
    yield served.url
    served.stop()
