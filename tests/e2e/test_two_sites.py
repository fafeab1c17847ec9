"""The incident's story with two live sites: B is missing studies, the gate refuses and lists
them, B catches up, the gate opens, the roles switch, and the old active site refuses stores."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest

from tests.e2e.live import LiveSite, dcmtk, free_port, wait_for
from twinpacs.synthetic import StudySpec, make_studies, write_study


def twinpacs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "twinpacs", *args], capture_output=True, text=True, timeout=180)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[LiveSite, LiveSite]]:
    a_ports, b_ports = (free_port(), free_port()), (free_port(), free_port())
    a = LiveSite(tmp_path / "A", "TWINPACS_A", ("--site-name", "A", "--role", "active",
                                                "--peer", f"B=http://127.0.0.1:{b_ports[1]}"), a_ports)
    b = LiveSite(tmp_path / "B", "TWINPACS_B", ("--site-name", "B", "--role", "standby",
                                                "--peer", f"A=http://127.0.0.1:{a_ports[1]}"), b_ports)
    yield a, b
    a.kill()
    b.kill()


def _json(result: subprocess.CompletedProcess[str]) -> dict:  # type: ignore[type-arg]
    return json.loads(result.stdout)


@pytest.mark.timeout(300)
def test_failover_story(pair: tuple[LiveSite, LiveSite], tmp_path: Path) -> None:
    a, b = pair
    a.start()
    a_url = f"http://127.0.0.1:{a.http_port}"
    specs = make_studies(5, StudySpec(series=2, instances_per_series=50, rows=16, columns=16, seed=3))
    for spec in specs:
        write_study(spec, tmp_path / "incoming" / spec.patient_id)
    sent = dcmtk("storescu", "-aec", a.ae_title, "+sd", "+r", "127.0.0.1", str(a.dicom_port), str(tmp_path / "incoming"))
    assert sent.returncode == 0, sent.stderr

    status = twinpacs("sync", "status", "--url", a_url, "--json")
    assert status.returncode == 1
    (peer,) = _json(status)["peers"]
    assert (peer["name"], peer["held"], peer["pending"], peer["confirmed"]) == ("B", 500, 500, 0)
    assert peer["percent"] != "100%" and peer["percent"].startswith("0.")

    plan = twinpacs("failover", "plan", "--to", "B", "--url", a_url, "--json")
    assert plan.returncode == 1
    missing = _json(plan)["missing_studies"]
    study_uids = {str(pydicom.dcmread(next((tmp_path / "incoming" / s.patient_id).iterdir())).StudyInstanceUID)
                  for s in specs}
    assert {m["StudyInstanceUID"] for m in missing} == study_uids
    assert sum(m["instances_missing"] for m in missing) == 500
    refused = twinpacs("failover", "run", "--to", "B", "--url", a_url)
    assert refused.returncode == 1 and "refused" in refused.stderr

    b.start()

    def in_sync() -> bool:
        return twinpacs("sync", "status", "--url", a_url, "--json").returncode == 0

    wait_for(in_sync, timeout=120, interval=0.5)
    (peer,) = _json(twinpacs("sync", "status", "--url", a_url, "--json"))["peers"]
    assert (peer["pending"], peer["confirmed"], peer["percent"]) == (0, 500, "100%")
    assert twinpacs("failover", "plan", "--to", "B", "--url", a_url, "--json").returncode == 0

    switched = twinpacs("failover", "run", "--to", "B", "--url", a_url, "--json")
    assert switched.returncode == 0, switched.stderr
    assert httpx.get(f"{a_url}/api/roles").json() == {"site": "A", "role": "standby", "active_site": "B"}
    assert httpx.get(f"http://127.0.0.1:{b.http_port}/api/roles").json()["role"] == "active"

    late = write_study(StudySpec(patient_id="LATE", series=1, instances_per_series=1, rows=8, columns=8), tmp_path / "late")
    refused_store = dcmtk("storescu", "-v", "-aec", a.ae_title, "127.0.0.1", str(a.dicom_port), str(late[0]))
    assert "Refused" in refused_store.stderr + refused_store.stdout
    stow = httpx.post(f"{a.dicomweb}/studies", content=_multipart(late[0].read_bytes()),
                      headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=XX'})
    assert stow.status_code == 503 and "active site B" in stow.json()["error"]
    accepted = dcmtk("storescu", "-aec", b.ae_title, "127.0.0.1", str(b.dicom_port), str(late[0]))
    assert accepted.returncode == 0, accepted.stderr


def _multipart(data: bytes) -> bytes:
    return b"--XX\r\nContent-Type: application/dicom\r\n\r\n" + data + b"\r\n--XX--\r\n"
