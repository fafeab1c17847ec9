"""Scheduling an order on site A brings exactly the relevant priors from the source archive, by
C-MOVE, C-GET or WADO-RS; the irrelevant ones stay where they were. Opening the order's study
then counts as a prefetch hit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.backend import backend_env
from tests.prefetch.conftest import ACCESSION, PRIORS, RELEVANT, Source, SiteA, SiteFactory, uids

NOT_FETCHED = set(PRIORS) - RELEVANT


def reasons(entry: dict) -> dict[str, tuple[str, str]]:  # type: ignore[type-arg]
    by_uid = {p.uid: name for name, p in PRIORS.items()}
    return {by_uid[p["study_instance_uid"]]: (p["state"], p["reason"]) for p in entry["priors"]}


def open_study(a: SiteA, study_uid: str) -> None:
    response = httpx.get(f"{a.http.url}/dicom-web/studies/{study_uid}/metadata",
                         headers={"Accept": "application/dicom+json"}, timeout=30)
    assert response.status_code == 200, response.text


def wait_opened(a: SiteA, count: int) -> dict:  # type: ignore[type-arg]
    """The hit rate once `count` studies are noted as opened (noted after the response has gone)."""
    deadline = time.monotonic() + 30
    while (rate := httpx.get(f"{a.http.url}/api/prefetch", timeout=30).json()["hit_rate"])["opened"] < count:
        assert time.monotonic() < deadline, rate
        time.sleep(0.02)
    return rate  # type: ignore[no-any-return]


def test_c_move_fetches_exactly_the_relevant_priors_and_counts_a_hit(source: Source, site_a: SiteFactory) -> None:
    a = site_a([source.dimse("pacs", "move")], dimse_port=source.move_port)
    for data in PRIORS["ct_2026"].objects:  # already here: counts as present, not fetched again
        a.site.archive.store(data, source="TEST")

    a.site.ris.place_order(a.order())
    entry = a.wait_settled()

    assert entry["job"]["state"] == "done", entry["job"]
    assert a.held() == uids(*RELEVANT)
    assert source.study_uids() == uids(*PRIORS)  # the irrelevant ones are only at the source
    found = reasons(entry)
    assert {n: s for n, (s, _) in found.items()} == {
        "ct_2026": "local", "ct_2025": "fetched", "ct_2024": "fetched", "ct_2023": "not-relevant",
        "mr_2026": "not-relevant", "ct_2015": "not-relevant", "own": "not-relevant"}
    assert "max_studies" in found["ct_2023"][1] and "other modality" in found["mr_2026"][1]
    assert "older than 5 years" in found["ct_2015"][1] and "own study" in found["own"][1]
    assert entry["order"] == {"placer_number": "PL1", "accession_number": ACCESSION, "patient_id": "PF1",
                              "patient_name": "Prior^Fetch", "priority": "ROUTINE",
                              "scheduled_at": "2026-12-02T09:00:00+00:00", "modality": "CT", "body_part": "CHEST",
                              "status": "scheduled"}

    # The modality sends the exam; the radiologist opens it: its priors were all here.
    for data in PRIORS["own"].objects:
        a.site.archive.store(data, source="MODALITY")
    open_study(a, PRIORS["own"].uid)
    assert wait_opened(a, 1) == {"opened": 1, "hits": 1, "misses": 0, "rate": 1.0, "percent": "100%"}
    open_study(a, PRIORS["own"].uid)  # opened again: still one study opened
    assert a.jobs.record_opened(PRIORS["own"].uid, a.worker.clock()) and a.jobs.hit_rate().opened == 1
    metrics = httpx.get(f"{a.http.url}/metrics", timeout=30).text
    for line in ("twinpacs_prefetch_studies_opened_total 1.0", "twinpacs_prefetch_hits_total 1.0",
                 "twinpacs_prefetch_hit_ratio 1.0", 'twinpacs_prefetch_jobs{state="done"} 1.0',
                 'twinpacs_prefetch_priors{state="fetched"} 2.0', 'twinpacs_prefetch_priors{state="local"} 1.0'):
        assert line in metrics


@pytest.mark.parametrize("kind", ["get", "dicomweb"])
def test_c_get_and_wado_rs_fetch_the_relevant_priors(source: Source, site_a: SiteFactory, kind: str) -> None:
    # With the body part rule on, the 2023 head CT is excluded as another body part.
    config = source.dicomweb("web") if kind == "dicomweb" else source.dimse("pacs", "get")
    a = site_a([config], same_body_part=True)
    a.site.ris.place_order(a.order())
    entry = a.wait_settled()

    assert entry["job"]["state"] == "done", entry["job"]
    assert a.held() == uids(*RELEVANT)
    found = reasons(entry)
    assert {n for n, (s, _) in found.items() if s == "fetched"} == RELEVANT
    assert "other body part (HEAD; the order is CHEST" in found["ct_2023"][1]
    with a.site.index.db.read() as conn:  # stored as prefetched from the named source
        sources = set(conn.exec_driver_sql("SELECT DISTINCT source FROM instances").scalars())
    assert sources == {"prefetch:web" if kind == "dicomweb" else "prefetch:pacs"}


def test_status_from_the_command_line(source: Source, site_a: SiteFactory) -> None:
    a = site_a([source.dicomweb("web")])
    a.site.ris.place_order(a.order())
    a.wait_settled()
    folder = a.site.settings.site.data_dir
    missing = folder.parent / "no-site"
    env = {**os.environ, **backend_env(folder)}
    # Side by side: each start of the command costs about a second.
    running = [subprocess.Popen([sys.executable, "-m", "twinpacs", "prefetch", "status", "--data-dir", str(where),
                                 *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
               for where, extra, environment in ((folder, ["--json"], env), (folder, [], env),
                                                 (missing, [], dict(os.environ)))]
    (as_json, _), (table, _), (_, refused) = (p.communicate(timeout=60) for p in running)
    codes = [p.returncode for p in running]

    assert codes == [0, 0, 1], (codes, refused)
    data = json.loads(as_json)
    assert data["hit_rate"] == {"opened": 0, "hits": 0, "misses": 0, "rate": 0.0, "percent": "0%"}
    (entry,) = data["orders"]
    assert entry["order"]["accession_number"] == ACCESSION and entry["job"]["state"] == "done"
    assert entry["counts"]["fetched"] == 3 and entry["counts"]["not-relevant"] == 4
    assert f"accession {ACCESSION}" in table and PRIORS["ct_2025"].uid in table
    assert "older than 5 years" in table and "hit rate: 0 of 0" in table
    # A folder that holds no site: said so, and nothing is created there.
    assert "no twinpacs index at" in refused and not missing.exists()
