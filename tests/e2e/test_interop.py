"""A live `twinpacs serve`, driven by clients nobody here wrote: DCMTK and dicomweb-client."""

from __future__ import annotations

import io
import socket
import subprocess
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

import httpx
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient

from tests.e2e.live import LiveSite, dataset_bytes, dcmtk, wait_for
from twinpacs.synthetic import StudySpec, write_study

SPEC = StudySpec(patient_id="E2E01", patient_name="Interop^Ida", series=3, instances_per_series=4,
                 rows=32, columns=32, accession_number="ACC-E2E", seed=42)


@pytest.fixture
def stored(site: LiveSite, tmp_path: Path) -> dict[str, bytes]:
    files = write_study(SPEC, tmp_path / "study")
    result = dcmtk("storescu", "-aec", site.ae_title, "+sd", "127.0.0.1", str(site.dicom_port), str(tmp_path / "study"))
    assert result.returncode == 0, result.stderr
    return {str(pydicom.dcmread(f).SOPInstanceUID): f.read_bytes() for f in files}


def _find(site: LiveSite, out: Path, model: str, *keys: str) -> list[pydicom.Dataset]:
    out.mkdir(exist_ok=True)
    args = ["findscu", model, "-aec", site.ae_title, "-X", "-od", str(out)]
    for key in keys:
        args += ["-k", key]
    result = dcmtk(*args, "127.0.0.1", str(site.dicom_port))
    assert result.returncode == 0, result.stderr
    return [pydicom.dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


def _originals_by_uid(stored: dict[str, bytes]) -> dict[str, bytes]:
    return {uid: dataset_bytes(data) for uid, data in stored.items()}


def test_echo(site: LiveSite) -> None:
    result = dcmtk("echoscu", "-aec", site.ae_title, "127.0.0.1", str(site.dicom_port))
    assert result.returncode == 0, result.stderr


def test_find_at_every_level(site: LiveSite, stored: dict[str, bytes], tmp_path: Path) -> None:
    patients = _find(site, tmp_path / "p", "-P", "QueryRetrieveLevel=PATIENT", "PatientID=E2E*",
                     "PatientName", "NumberOfPatientRelatedInstances")
    assert [(p.PatientID, str(p.PatientName), p.NumberOfPatientRelatedInstances) for p in patients] == [
        ("E2E01", "Interop^Ida", 12)]
    studies = _find(site, tmp_path / "s", "-S", "QueryRetrieveLevel=STUDY", "StudyDate=20261101-20261231",
                    "PatientName=interop*", "StudyInstanceUID", "ModalitiesInStudy",
                    "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances", "AccessionNumber")
    assert len(studies) == 1 and studies[0].AccessionNumber == "ACC-E2E"
    assert (studies[0].NumberOfStudyRelatedSeries, studies[0].NumberOfStudyRelatedInstances) == (3, 12)
    assert studies[0].ModalitiesInStudy == "CT"
    study_uid = studies[0].StudyInstanceUID
    series = _find(site, tmp_path / "se", "-S", "QueryRetrieveLevel=SERIES", f"StudyInstanceUID={study_uid}",
                   "SeriesInstanceUID", "Modality=CT", "NumberOfSeriesRelatedInstances")
    assert len(series) == 3 and {s.NumberOfSeriesRelatedInstances for s in series} == {4}
    images = _find(site, tmp_path / "i", "-S", "QueryRetrieveLevel=IMAGE", f"StudyInstanceUID={study_uid}",
                   f"SeriesInstanceUID={series[0].SeriesInstanceUID}", "SOPInstanceUID", "InstanceNumber")
    assert len(images) == 4 and {i.SOPInstanceUID for i in images} <= set(stored)


def test_unknown_level_is_refused(site: LiveSite) -> None:
    result = dcmtk("findscu", "-v", "-S", "-aec", site.ae_title, "-k", "QueryRetrieveLevel=FRAME",
                   "-k", "StudyInstanceUID", "127.0.0.1", str(site.dicom_port))
    assert "Error: DataSetDoesNotMatchSOPClass" in result.stderr


def test_cget_returns_identical_datasets(site: LiveSite, stored: dict[str, bytes], tmp_path: Path) -> None:
    study_uid = pydicom.dcmread(io.BytesIO(next(iter(stored.values())))).StudyInstanceUID
    out = tmp_path / "get"
    out.mkdir()
    result = dcmtk("getscu", "-S", "-aec", site.ae_title, "-k", "QueryRetrieveLevel=STUDY",
                   "-k", f"StudyInstanceUID={study_uid}", "-od", str(out), "127.0.0.1", str(site.dicom_port))
    assert result.returncode == 0, result.stderr
    received = {pydicom.dcmread(p).SOPInstanceUID: dataset_bytes(p.read_bytes()) for p in out.iterdir()}
    assert received == _originals_by_uid(stored)


def test_cmove_returns_identical_datasets(site: LiveSite, stored: dict[str, bytes], tmp_path: Path, move_port: int) -> None:
    study_uid = pydicom.dcmread(io.BytesIO(next(iter(stored.values())))).StudyInstanceUID
    out = tmp_path / "moved"
    out.mkdir()
    receiver = subprocess.Popen(["storescp", "-aet", "STORESCP", "-od", str(out), str(move_port)],
                                env={"TCP_NODELAY": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: _listening(move_port), timeout=10)  # else the move's sub-association is refused
    try:
        result = dcmtk("movescu", "-S", "-aec", site.ae_title, "-aem", "STORESCP", "-k", "QueryRetrieveLevel=STUDY",
                       "-k", f"StudyInstanceUID={study_uid}", "127.0.0.1", str(site.dicom_port))
        assert result.returncode == 0, result.stderr
    finally:
        receiver.terminate()
        receiver.wait(10)
    received = {pydicom.dcmread(p).SOPInstanceUID: dataset_bytes(p.read_bytes()) for p in out.iterdir()}
    assert received == _originals_by_uid(stored)


def test_cmove_to_unknown_destination_is_refused(site: LiveSite) -> None:
    result = dcmtk("movescu", "-S", "-aec", site.ae_title, "-aem", "NOWHERE", "-k", "QueryRetrieveLevel=STUDY",
                   "-k", "StudyInstanceUID=1.2.3", "127.0.0.1", str(site.dicom_port))
    assert result.returncode != 0 and "Refused: MoveDestinationUnknown" in result.stderr


def test_dicomweb_client_finds_and_retrieves(site: LiveSite, stored: dict[str, bytes]) -> None:
    client = DICOMwebClient(site.dicomweb)
    (study,) = client.search_for_studies(search_filters={"PatientID": "E2E01"})
    study_uid = study["0020000D"]["Value"][0]
    assert len(client.search_for_series(study_uid)) == 3
    assert len(client.search_for_instances(study_uid)) == 12
    retrieved = client.retrieve_study(study_uid)
    assert sorted(ds.SOPInstanceUID for ds in retrieved) == sorted(stored)
    for ds in retrieved:
        original = pydicom.dcmread(io.BytesIO(stored[ds.SOPInstanceUID]))
        assert ds.PixelData == original.PixelData
    metadata = client.retrieve_study_metadata(study_uid)
    assert len(metadata) == 12


def test_wado_rs_bytes_are_identical(site: LiveSite, stored: dict[str, bytes]) -> None:
    study_uid = pydicom.dcmread(io.BytesIO(next(iter(stored.values())))).StudyInstanceUID
    response = httpx.get(f"{site.dicomweb}/studies/{study_uid}",
                         headers={"Accept": 'multipart/related; type="application/dicom"'}, timeout=30)
    assert response.status_code == 200
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + response.headers["content-type"].encode() + b"\r\n\r\n" + response.content)
    parts = [part.get_payload(decode=True) for part in message.iter_parts()]
    received = {pydicom.dcmread(io.BytesIO(p)).SOPInstanceUID: dataset_bytes(p) for p in parts}
    assert received == _originals_by_uid(stored)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False
