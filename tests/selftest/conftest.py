"""Two real sites in this process replicating to each other, each with its DICOM listener and
its HTTP door on loopback ports: what `twinpacs selftest` runs against."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from twinpacs.app import Site
from twinpacs.dimse import DimseServer, start_dimse
from tests.replication.conftest import Sites, free_port, twinpacs_peer
from tests.served import ServedApp


@dataclass
class Pair:
    a: Site
    b: Site
    url_a: str
    url_b: str


class Doors:
    """Sites with their DIMSE listeners; every listener and site stopped at the end."""

    def __init__(self, root: Path) -> None:
        self.sites = Sites(root)
        self.dimse: list[DimseServer] = []

    def site(self, name: str, peer: str, peer_port: int) -> Site:
        site = self.sites.build(name, [twinpacs_peer(peer, peer_port)])
        self.dimse.append(start_dimse(site))
        site.dicom_port = self.dimse[-1].port  # as `twinpacs serve` sets it
        for service in site.background:
            service.start()
        return site

    def serve(self, site: Site, port: int) -> ServedApp:
        return self.sites.serve(site, port)

    def close(self) -> None:
        for dimse in self.dimse:
            dimse.shutdown()
        self.sites.close()


@pytest.fixture
def doors(tmp_path: Path) -> Iterator[Doors]:
    made = Doors(tmp_path)
    yield made
    made.close()


@pytest.fixture
def pair(doors: Doors) -> Pair:
    port_a, port_b = free_port(), free_port()
    a, b = doors.site("A", "B", port_b), doors.site("B", "A", port_a)
    return Pair(a, b, doors.serve(a, port_a).url, doors.serve(b, port_b).url)
