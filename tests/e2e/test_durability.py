"""G1 and G2 against a live server: SIGKILL during ingest loses nothing acknowledged and leaves
no partial file; storing the same objects again writes nothing."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import pydicom
import pytest

from tests.conftest import stored_files
from tests.e2e.live import DCMTK_ENV, LiveSite, dataset_bytes, dcmtk, wait_for
from twinpacs.core.parsing import parse_part10
from twinpacs.synthetic import StudySpec, make_studies, write_study

SENDING = re.compile(r"Sending file: (\S+)")
RESPONSE = re.compile(r"Received Store Response \((\w+)")


def _acknowledged(log: str) -> list[str]:
    """Files whose C-STORE response was Success, from storescu -v output (in order)."""
    acked, current = [], None
    for line in log.splitlines():
        if sending := SENDING.search(line):
            current = sending[1]
        elif (response := RESPONSE.search(line)) and current:
            if response[1] == "Success":
                acked.append(current)
            current = None
    return acked


def _assert_no_partial_files(store: Path) -> None:
    for path in stored_files(store):
        assert parse_part10(path.read_bytes()).content_hash == path.name, f"partial or corrupt {path}"
    assert list((store / "tmp").iterdir()) == []


def _assert_retrievable(site: LiveSite, files: list[Path]) -> None:
    with httpx.Client(base_url=site.dicomweb, timeout=30) as client:
        for path in files:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            url = f"/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
            response = client.get(url, headers={"Accept": 'multipart/related; type="application/dicom"'})
            assert response.status_code == 200, f"acknowledged {path.name} lost"
            assert dataset_bytes(path.read_bytes()) in response.content


@pytest.mark.timeout(240)
def test_sigkill_during_ingest_loses_nothing_acknowledged(tmp_path: Path) -> None:
    specs = make_studies(3, StudySpec(series=2, instances_per_series=40, rows=64, columns=64))
    folder = tmp_path / "incoming"
    for spec in specs:
        write_study(spec, folder / spec.patient_id)
    site = LiveSite(tmp_path / "site", "TWINPACS")
    all_acked: list[Path] = []
    for round_, kill_after in enumerate((15, 60, 110)):
        site.start()
        log_path = tmp_path / f"storescu-{round_}.log"
        with log_path.open("w") as log:
            sender = subprocess.Popen(
                ["storescu", "-v", "-aec", "TWINPACS", "+sd", "+r", "127.0.0.1", str(site.dicom_port), str(folder)],
                env=DCMTK_ENV, stdout=log, stderr=subprocess.STDOUT,
            )
            wait_for(lambda: len(_acknowledged(log_path.read_text())) >= kill_after or sender.poll() is not None)
            site.kill()
            sender.wait(60)
        acked = [Path(p) for p in _acknowledged(log_path.read_text())]
        assert acked, "storescu acknowledged nothing before the kill"
        all_acked += acked
        site.start()
        _assert_no_partial_files(tmp_path / "site" / "store")
        _assert_retrievable(site, all_acked)
        site.stop()
    assert site.process and site.process.returncode == 0


def test_storing_the_same_study_twice_writes_no_second_file(site: LiveSite, tmp_path: Path) -> None:
    write_study(StudySpec(series=1, instances_per_series=5, rows=32, columns=32), tmp_path / "study")
    send = ("storescu", "-aec", site.ae_title, "+sd", "127.0.0.1", str(site.dicom_port), str(tmp_path / "study"))
    assert dcmtk(*send).returncode == 0
    store = site.data_dir / "store"
    first = {p: p.stat().st_mtime_ns for p in stored_files(store)}
    before = httpx.get(f"http://127.0.0.1:{site.http_port}/api/figures").json()
    assert dcmtk(*send).returncode == 0
    assert {p: p.stat().st_mtime_ns for p in stored_files(store)} == first
    after = httpx.get(f"http://127.0.0.1:{site.http_port}/api/figures").json()
    assert after["bytes_written"] == before["bytes_written"]
    assert after["bytes_received"] > before["bytes_received"]
    assert after["instances"] == 5
