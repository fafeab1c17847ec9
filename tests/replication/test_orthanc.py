"""Replication to a real third-party archive: Debian's Orthanc over DIMSE, confirmed through
its Storage Commitment SCP, which reports on a new association to this site's listener.
Skipped when Orthanc or a C compiler (for the loopback shim) is not installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from twinpacs.dimse import start_dimse

from .conftest import HOST, Sites, free_port, held, objects, states, wait_for

ORTHANC, CC = shutil.which("Orthanc"), shutil.which("cc")
pytestmark = pytest.mark.skipif(not (ORTHANC and CC), reason="needs Debian's orthanc package and a C compiler")


class Orthanc:
    def __init__(self, root: Path, modality_port: int) -> None:
        self.dicom_port, self.http_port = free_port(), free_port()
        root.mkdir(parents=True)
        shim = root / "bind_loopback.so"
        subprocess.run([str(CC), "-shared", "-fPIC", "-o", str(shim), str(Path(__file__).with_name("bind_loopback.c")),
                        "-ldl"], check=True)
        config = root / "orthanc.json"
        config.write_text(json.dumps({
            "Name": "twinpacs-test", "StorageDirectory": str(root / "db"), "IndexDirectory": str(root / "db"),
            "DicomAet": "ORTHANC", "DicomPort": self.dicom_port, "HttpPort": self.http_port,
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "Plugins": [],
            "DicomModalities": {"A": ["A", HOST, modality_port]},  # where its commitment reports go
        }))
        self.process = subprocess.Popen([str(ORTHANC), str(config)], env={**os.environ, "LD_PRELOAD": str(shim)},
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._up, what="Orthanc to answer")

    def _up(self) -> bool:
        assert self.process.poll() is None, "Orthanc exited"
        try:
            return httpx.get(f"http://{HOST}:{self.http_port}/system").status_code == 200
        except httpx.TransportError:
            return False

    def instances(self) -> list[str]:
        found = httpx.get(f"http://{HOST}:{self.http_port}/instances?expand").json()
        return sorted(i["MainDicomTags"]["SOPInstanceUID"] for i in found)

    def stop(self) -> None:
        self.process.kill()  # a throwaway instance: its clean shutdown would cost seconds
        self.process.wait(timeout=15)


@pytest.fixture
def listener_port() -> int:
    return free_port()


@pytest.fixture
def orthanc(tmp_path: Path, listener_port: int) -> Iterator[Orthanc]:
    server = Orthanc(tmp_path / "orthanc", listener_port)
    yield server
    server.stop()


def test_replicates_to_orthanc_confirmed_by_storage_commitment(
    sites: Sites, orthanc: Orthanc, listener_port: int,
) -> None:
    peer = {"name": "ORTHANC", "kind": "dimse", "ae_title": "ORTHANC", "host": HOST, "port": orthanc.dicom_port,
            "storage_commitment": True}
    a = sites.build("A", [peer], dicom={"port": listener_port})
    listener = start_dimse(a)  # Orthanc sends its N-EVENT-REPORT here, on an association of its own
    try:
        a.replication.start()  # type: ignore[union-attr]
        for data in objects(3, seed=40):
            a.archive.store(data, "TEST")
        wait_for(lambda: states(a) == {"confirmed": 3}, what="3 rows confirmed by Orthanc")
        assert orthanc.instances() == sorted(held(a))
    finally:
        listener.shutdown()
