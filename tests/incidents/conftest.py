"""Real sites for the incident drafts: an index on the suite's backend, a store on disk, a peer
that is down (a closed port) or served live, and a local webhook receiver (tests/notices)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from twinpacs.app import Site, build_site
from twinpacs.config import load_settings
from twinpacs.core.notices import DeliveryPolicy
from twinpacs.escalation import build_escalator
from twinpacs.incident_watch import IncidentWatch
from twinpacs.synthetic import StudySpec, encode, make_study
from tests.backend import backend_url
from tests.notices.conftest import Receiver, receiver  # noqa: F401 (the fixture)
from tests.served import ServedApp

FAST = DeliveryPolicy(timeout_s=2.0, attempts=3, backoff_s=0.01)
# Thresholds no test reaches unless it lowers them: each test drives one condition only.
QUIET = {"sync_gap_objects": 1_000_000, "retrieval_latency_ms": 3_600_000.0, "replication_failures": 1_000_000}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
    return found


def study(count: int = 3, seed: int = 1) -> list[bytes]:
    spec = StudySpec(patient_id=f"INC{seed}", series=1, instances_per_series=count, rows=8, columns=8, seed=seed)
    return [encode(ds) for ds in make_study(spec)]


class Sites:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.built: list[Site] = []
        self.served: list[ServedApp] = []

    def build(self, name: str = "A", peers: list[dict[str, Any]] | None = None, incidents: dict[str, Any] | None = None,
              replication: dict[str, Any] | None = None, **more: Any) -> Site:
        overrides = {"site": {"data_dir": self.root / name, "name": name, "ae_title": name},
                     "database": {"url": backend_url(self.root / name)}, "dicom": {"port": 0},
                     "peers": peers or [], "incidents": {**QUIET, "sync_gap_s": 0, **(incidents or {})},
                     "replication": {"retry_initial_s": 0.05, "retry_max_s": 0.1, **(replication or {})},
                     # environment=False: the HTTP door is opened here as tests/conftest.py opens it for others
                     "security": {"anonymous_role": "administrator"}, **more}
        site = build_site(load_settings(overrides=overrides, environment=False))
        self.built.append(site)
        return site

    def serve(self, site: Site) -> ServedApp:
        self.served.append(ServedApp(site))
        return self.served[-1]

    def watch(self, site: Site) -> IncidentWatch:
        return IncidentWatch(site, build_escalator(site, policy=FAST))

    def close(self) -> None:
        for served in self.served:
            served.stop()
        for site in self.built:
            for service in site.background:
                service.stop()
            site.close()


@pytest.fixture
def sites(tmp_path: Path) -> Iterator[Sites]:
    made = Sites(tmp_path)
    yield made
    made.close()


def down_peer(name: str = "B") -> dict[str, Any]:
    return {"name": name, "dicomweb_url": f"http://127.0.0.1:{closed_port()}/dicom-web"}
