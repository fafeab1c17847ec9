"""twinpacs against a real third-party archive, Debian's Orthanc: replication over DIMSE
confirmed only through Storage Commitment (Orthanc sends its N-EVENT-REPORT on an
association of its own to twinpacs's DICOM listener), 'unverified' without it, and the
presence audit by C-FIND finding an instance deleted behind twinpacs's back.

Everything runs in a private network namespace (see conftest.py): Orthanc listens on all
interfaces of a namespace that has nothing but loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from twinpacs.app import Site, build_site
from twinpacs.config import load_settings
from twinpacs.synthetic import StudySpec, encode, make_study
from twinpacs.web import create_app
from tests.backend import backend_url

from .conftest import HOST, ORTHANC_AET, Orthanc, free_port

SITE_AE = "TWINPACS_TP"
AUDIT_AE = "TWINPACS-AUDIT"  # the calling AE of `twinpacs audit --against-dimse`
COMMITTED, SENT_ONLY = "ORTHANC-SC", "ORTHANC-NOSC"
STUDY = StudySpec(patient_id="ORTH1", patient_name="Orthanc^Test", study_date="20261201",
                  accession_number="ACC-ORTH1", series=2, instances_per_series=3, rows=16, columns=16, seed=71)


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)
    return found


@dataclass
class Pair:
    site: Site
    site_url: str
    orthanc: Orthanc
    http: httpx.Client

    def sync(self) -> dict[str, dict[str, Any]]:
        status = self.http.get(f"{self.site_url}/api/sync").raise_for_status().json()
        return {p["name"]: p for p in status["peers"]}

    def audit(self) -> tuple[int, dict[str, Any]]:
        """`twinpacs audit --against-dimse` as an operator runs it (a subprocess started from
        this thread, so in this namespace)."""
        done = subprocess.run(
            [sys.executable, "-m", "twinpacs", "audit", "--url", self.site_url,
             "--against-dimse", self.orthanc.address, "--json"],
            capture_output=True, text=True, timeout=60, env={**os.environ, "NO_PROXY": "*"})
        assert done.returncode in (0, 1) and done.stdout.strip(), \
            f"audit exit {done.returncode}:\n{done.stdout}\n{done.stderr}"
        return done.returncode, json.loads(done.stdout)


@pytest.fixture
def pair(netns: None, orthanc_binary_path: str, tmp_path: Path) -> Iterator[Pair]:
    """A twinpacs site with Orthanc as two DIMSE peers (with and without Storage
    Commitment), both listening on this namespace's loopback."""
    from twinpacs.dimse import start_dimse

    orthanc_dicom, orthanc_http = free_port(), free_port()
    site_dicom = free_port()
    peer = {"kind": "dimse", "ae_title": ORTHANC_AET, "host": HOST, "port": orthanc_dicom}
    settings = load_settings(overrides={
        "site": {"data_dir": tmp_path / "site", "name": "TP", "ae_title": SITE_AE},
        "database": {"url": backend_url(tmp_path / "site", unix_socket=True)},  # no TCP route out of netns
        "dicom": {"bind": HOST, "port": site_dicom},
        "http": {"bind": HOST, "port": 0},
        "peers": [{"name": COMMITTED, **peer, "storage_commitment": True},
                  {"name": SENT_ONLY, **peer, "storage_commitment": False}],
        "replication": {"batch_size": 10, "retry_initial_s": 0.2, "retry_max_s": 1.0, "give_up_after": 1000},
    })
    site = build_site(settings)
    dimse = start_dimse(site)
    server = uvicorn.Server(uvicorn.Config(create_app(site), host=HOST, port=0, log_level="warning",
                                           access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    orthanc = None
    http = httpx.Client(timeout=10, trust_env=False)
    try:
        orthanc = Orthanc(orthanc_binary_path, tmp_path / "orthanc",
                          {"twinpacs": (SITE_AE, HOST, dimse.port), "auditor": (AUDIT_AE, HOST, 1)},
                          dicom_port=orthanc_dicom, http_port=orthanc_http)
        thread.start()
        wait_for(lambda: server.started or not thread.is_alive(), 10, "the site's HTTP server")
        port = server.servers[0].sockets[0].getsockname()[1]
        for service in site.background:
            service.start()  # from this thread: the workers' sockets are in the namespace too
        yield Pair(site, f"http://{HOST}:{port}", orthanc, http)
    finally:
        for service in site.background:
            service.stop()
        server.should_exit = True
        if thread.is_alive():
            thread.join(10)
        dimse.shutdown()
        if orthanc is not None:
            orthanc.stop()
        http.close()
        site.close()


def test_replication_to_orthanc_is_confirmed_by_storage_commitment_and_audited(pair: Pair) -> None:
    started = time.monotonic()
    stored = [encode(ds) for ds in make_study(STUDY)]
    for data in stored:
        pair.site.archive.store(data)
    uids = {str(ds.SOPInstanceUID) for ds in make_study(STUDY)}
    held = len(uids)

    def settled() -> dict[str, dict[str, Any]] | None:
        peers = pair.sync()
        done = (peers[COMMITTED]["confirmed"] == held and peers[SENT_ONLY]["unverified"] == held)
        return peers if done else None

    try:
        peers = wait_for(settled, 40, "Orthanc's storage commitment (confirmed == held) and the plain sends")
    except AssertionError:
        raise AssertionError(f"sync status: {json.dumps(pair.sync(), indent=1)}\nOrthanc log:\n"
                             f"{pair.orthanc.log()}") from None
    replicated = time.monotonic() - started
    # Confirmed by Orthanc's commitment report, exactly: nothing left pending or failed.
    assert {k: peers[COMMITTED][k] for k in ("held", "confirmed", "pending", "failed", "unverified")} == \
        {"held": held, "confirmed": held, "pending": 0, "failed": 0, "unverified": 0}
    # Without Storage Commitment: sent, never confirmed, never 100 %.
    assert {k: peers[SENT_ONLY][k] for k in ("held", "confirmed", "pending", "failed", "unverified")} == \
        {"held": held, "confirmed": 0, "pending": 0, "failed": 0, "unverified": held}
    assert peers[SENT_ONLY]["percent"] != "100%"
    # Orthanc itself holds them (its REST API, on the namespace's loopback).
    assert pair.orthanc.sop_instance_uids() == uids

    code, report = pair.audit()
    assert code == 0 and report["identical"], report
    assert report["a"]["instances"] == report["b"]["instances"] == held

    gone = sorted(uids)[0]
    pair.orthanc.delete(gone)
    assert pair.orthanc.sop_instance_uids() == uids - {gone}
    code, report = pair.audit()
    assert code == 1 and not report["identical"]
    assert [(d["key"], d["where"]) for d in report["instances"]] == [(gone, "missing_on_b")]
    assert report["b"]["instances"] == held - 1

    # The peer without commitment stayed 'unverified' throughout; nothing turned it confirmed.
    later = pair.sync()
    assert later[SENT_ONLY]["confirmed"] == 0 and later[SENT_ONLY]["unverified"] == held
    print(f"replicated and confirmed {held} instances in {replicated:.2f} s; "
          f"whole test {time.monotonic() - started:.2f} s")
