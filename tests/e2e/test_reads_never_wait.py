"""G3: queries and retrievals complete while a large ingest is running."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pydicom

from tests.e2e.live import DCMTK_ENV, LiveSite, dcmtk, wait_for
from twinpacs.synthetic import StudySpec, make_studies, write_study


def test_find_and_wado_complete_during_ingest(site: LiveSite, tmp_path: Path) -> None:
    first = write_study(StudySpec(patient_id="READ01", series=1, instances_per_series=10), tmp_path / "first")
    assert dcmtk("storescu", "-aec", site.ae_title, "+sd", "127.0.0.1", str(site.dicom_port),
                 str(tmp_path / "first")).returncode == 0
    study_uid = pydicom.dcmread(first[0]).StudyInstanceUID
    big = tmp_path / "big"
    for spec in make_studies(4, StudySpec(series=2, instances_per_series=50, rows=256, columns=256, seed=7)):
        write_study(spec, big / spec.patient_id)
    ingest = subprocess.Popen(["storescu", "-aec", site.ae_title, "+sd", "+r", "127.0.0.1",
                               str(site.dicom_port), str(big)], env=DCMTK_ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{site.http_port}/api/figures").json()["instances"] > 20)
        for _ in range(3):
            found = dcmtk("findscu", "-v", "-S", "-aec", site.ae_title, "-k", "QueryRetrieveLevel=STUDY",
                          "-k", "PatientID=READ01", "-k", "StudyInstanceUID", "127.0.0.1", str(site.dicom_port),
                          timeout=20)
            assert found.returncode == 0 and study_uid in found.stderr + found.stdout
            response = httpx.get(f"{site.dicomweb}/studies/{study_uid}", timeout=20,
                                 headers={"Accept": 'multipart/related; type="application/dicom"'})
            assert response.status_code == 200 and response.content.count(b"application/dicom") >= 10
        assert ingest.poll() is None, "ingest finished before the reads: make the batch larger"
    finally:
        ingest.wait(120)
    assert ingest.returncode == 0
