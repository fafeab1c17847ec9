"""C-FIND through DCMTK findscu: every matching type at every level, both roots, return keys."""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import build_context
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
)

from twinpacs.dimse import DimseServer
from twinpacs.synthetic import StudySpec, encode, make_study

from .conftest import HOST, association, dcmtk, launch, stop

SPECS = {
    "A1": StudySpec(patient_id="TPA", patient_name="Alder^Ann", study_date="20240105", modality="CT", series=2,
                    instances_per_series=2, accession_number="ACC001", seed=1, study_description="CT chest"),
    "B": StudySpec(patient_id="TPB", patient_name="Birch^Ben", study_date="20240310", modality="MR", series=1,
                   instances_per_series=3, accession_number="ACC002", seed=2, study_description="MR head"),
    "C": StudySpec(patient_id="TPC", patient_name="Birch^Bo", study_date="20241120", modality="CR",
                   series=1, instances_per_series=1, accession_number="ACC013", seed=3, study_description="CR chest"),
    "A2": StudySpec(patient_id="TPA", patient_name="Alder^Ann", study_date="20241201", modality="MR",
                    series=1, instances_per_series=1, accession_number="ACC014", seed=4, study_description="MR knee"),
    "D": StudySpec(patient_id="TPD", study_date="20230615", modality="OT", series=1, instances_per_series=1,
                   accession_number="ACC100", seed=5, study_description="SC notes"),
}
UNICODE_NAME = "Müller^Jörg"
DATA = {key: make_study(dataclasses.replace(spec, rows=8, columns=8)) for key, spec in SPECS.items()}
for ds in DATA["D"]:
    ds.SpecificCharacterSet, ds.PatientName = "ISO_IR 192", UNICODE_NAME


def study(key: str) -> str:
    return str(DATA[key][0].StudyInstanceUID)


def series(key: str, number: int) -> str:
    return next(str(ds.SeriesInstanceUID) for ds in DATA[key] if ds.SeriesNumber == number)


def sop(key: str, number: int, instance: int) -> str:
    return next(str(ds.SOPInstanceUID) for ds in DATA[key]
                if (ds.SeriesNumber, ds.InstanceNumber) == (number, instance))


def patient(pid: str) -> Dataset:
    return next(ds for ds in itertools.chain(*DATA.values()) if ds.PatientID == pid)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DimseServer]:
    server = launch(tmp_path_factory.mktemp("find"))
    for ds in itertools.chain(*DATA.values()):
        server.site.archive.store(encode(ds), source="TEST")
    yield server
    stop(server)


def findscu(server: DimseServer, model: str, level: str, keys: list[str], folder: Path, *options: str) -> list[Dataset]:
    """Run findscu, extracting each response to a file; the responses in order."""
    folder.mkdir()
    args = [f"-{model}", "-X", "-od", str(folder), *options, "-k", f"QueryRetrieveLevel={level}"]
    dcmtk("findscu", *args, *itertools.chain(*(("-k", k) for k in keys)), HOST, server.port)
    return [dcmread(p) for p in sorted(folder.glob("rsp*.dcm"))]


def _births() -> dict[str, str]:
    return {pid: patient(pid).PatientBirthDate for pid in ("TPA", "TPB", "TPC", "TPD")}


BIRTH_B, SEX_A = _births()["TPB"], patient("TPA").PatientSex
PATIENT_CASES = {
    "single": (["PatientID=TPB"], {"TPB"}),
    "wildcard *": (["PatientID", "PatientName=Birch*"], {"TPB", "TPC"}),
    "wildcard ?": (["PatientID", "PatientName=Alder^A?n"], {"TPA"}),
    "range": (["PatientID", f"PatientBirthDate={BIRTH_B}-"], {p for p, b in _births().items() if b >= BIRTH_B}),
    "list": (["PatientID", f"PatientSex={SEX_A}\\O"], {p for p in _births() if patient(p).PatientSex == SEX_A}),
    "universal": (["PatientID"], {"TPA", "TPB", "TPC", "TPD"}),
}
STUDY_CASES = {
    "single": (["StudyDate=20240310"], {"B"}),
    "wildcard *": (["AccessionNumber=ACC00*"], {"A1", "B"}),
    "wildcard * leading": (["StudyDescription=*chest"], {"A1", "C"}),
    "wildcard ?": (["AccessionNumber=ACC01?"], {"C", "A2"}),
    "name, any case": (["PatientName=alder*"], {"A1", "A2"}),
    "range": (["StudyDate=20240101-20240630"], {"A1", "B"}),
    "range, open end": (["StudyDate=20241101-"], {"C", "A2"}),
    "range, open start": (["StudyDate=-20240105"], {"A1", "D"}),
    "uid list": ([f"StudyInstanceUID={study('A1')}\\{study('C')}"], {"A1", "C"}),
    "modalities in study": (["ModalitiesInStudy=MR"], {"B", "A2"}),
    "universal": ([], set(SPECS)),
}
SERIES_CASES = {
    "single": (["Modality=CT"], {("A1", 1), ("A1", 2)}),
    "wildcard *": (["SeriesDescription=*MR*"], {("B", 1), ("A2", 1)}),
    "wildcard ?": (["SeriesDescription=Synthetic C? series 1"], {("A1", 1), ("C", 1)}),
    "range": (["SeriesDate=20240301-20241130"], {("B", 1), ("C", 1)}),
    "uid list": ([f"SeriesInstanceUID={series('A1', 2)}\\{series('B', 1)}"], {("A1", 2), ("B", 1)}),
    "universal in a study": ([f"StudyInstanceUID={study('A1')}"], {("A1", 1), ("A1", 2)}),
}
IMAGE_CASES = {
    "single": ([f"SOPInstanceUID={sop('B', 1, 2)}"], {("B", 1, 2)}),
    "uid list": ([f"SOPInstanceUID={sop('B', 1, 1)}\\{sop('A1', 2, 2)}"], {("B", 1, 1), ("A1", 2, 2)}),
    "wildcard ?": (["PatientName=Birch^B?"], {("C", 1, 1)}),
    "range": (["StudyDate=20241101-"], {("C", 1, 1), ("A2", 1, 1)}),
    "single number": ([f"SeriesInstanceUID={series('A1', 1)}", "InstanceNumber=2"], {("A1", 1, 2)}),
    "universal in a series": ([f"SeriesInstanceUID={series('B', 1)}"], {("B", 1, 1), ("B", 1, 2), ("B", 1, 3)}),
}


@pytest.mark.parametrize("case", PATIENT_CASES)
def test_patient_level(server: DimseServer, case: str, tmp_path: Path) -> None:
    keys, expected = PATIENT_CASES[case]
    found = findscu(server, "P", "PATIENT", keys, tmp_path / "rsp")
    assert sorted(ds.PatientID for ds in found) == sorted(expected)


@pytest.mark.parametrize("model", ["P", "S"])
@pytest.mark.parametrize("case", STUDY_CASES)
def test_study_level(server: DimseServer, model: str, case: str, tmp_path: Path) -> None:
    keys, expected = STUDY_CASES[case]
    found = findscu(server, model, "STUDY", ["StudyInstanceUID", *keys], tmp_path / "rsp")
    assert sorted(ds.StudyInstanceUID for ds in found) == sorted(study(k) for k in expected)


@pytest.mark.parametrize("model", ["P", "S"])
@pytest.mark.parametrize("case", SERIES_CASES)
def test_series_level(server: DimseServer, model: str, case: str, tmp_path: Path) -> None:
    keys, expected = SERIES_CASES[case]
    found = findscu(server, model, "SERIES", ["SeriesInstanceUID", *keys], tmp_path / "rsp")
    assert sorted(ds.SeriesInstanceUID for ds in found) == sorted(series(*k) for k in expected)


@pytest.mark.parametrize("model", ["P", "S"])
@pytest.mark.parametrize("case", IMAGE_CASES)
def test_image_level(server: DimseServer, model: str, case: str, tmp_path: Path) -> None:
    keys, expected = IMAGE_CASES[case]
    found = findscu(server, model, "IMAGE", ["SOPInstanceUID", *keys], tmp_path / "rsp")
    assert sorted(ds.SOPInstanceUID for ds in found) == sorted(sop(*k) for k in expected)


def _keys(ds: Dataset) -> set[str]:
    return {str(e.tag) if not e.keyword else e.keyword for e in ds}


EXTRA_KEYS = {"QueryRetrieveLevel", "SpecificCharacterSet", "RetrieveAETitle"}


def test_study_responses_hold_exactly_the_keys_asked_for(server: DimseServer, tmp_path: Path) -> None:
    asked = ["PatientName", "PatientID", "StudyDate", "AccessionNumber", "ModalitiesInStudy",
             "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances", "InstitutionName", "(0011,0010)"]
    (found,) = findscu(server, "S", "STUDY", [f"StudyInstanceUID={study('A1')}", *asked], tmp_path / "rsp")
    assert _keys(found) == {"StudyInstanceUID", *EXTRA_KEYS, *asked[:-1], "(0011,0010)"}
    assert (found.QueryRetrieveLevel, found.RetrieveAETitle, found.SpecificCharacterSet) == (
        "STUDY", "TWINPACS", "ISO_IR 192")
    assert (found.PatientName, found.PatientID, found.StudyDate, found.AccessionNumber) == (
        "Alder^Ann", "TPA", "20240105", "ACC001")
    assert (found.ModalitiesInStudy, found.NumberOfStudyRelatedSeries,
            found.NumberOfStudyRelatedInstances) == ("CT", 2, 4)
    assert found.InstitutionName == "" and found[0x00110010].value in (None, "", b"")  # unknown: returned empty


def test_computed_keys_at_patient_and_series_level(server: DimseServer, tmp_path: Path) -> None:
    (patient_row,) = findscu(server, "P", "PATIENT", ["PatientID=TPA", "NumberOfPatientRelatedStudies",
                             "NumberOfPatientRelatedSeries", "NumberOfPatientRelatedInstances"], tmp_path / "p")
    assert (patient_row.NumberOfPatientRelatedStudies, patient_row.NumberOfPatientRelatedSeries,
            patient_row.NumberOfPatientRelatedInstances) == (2, 3, 5)
    (series_row,) = findscu(server, "S", "SERIES", [f"SeriesInstanceUID={series('B', 1)}", "Modality",
                            "SeriesNumber", "NumberOfSeriesRelatedInstances"], tmp_path / "s")
    assert (series_row.Modality, series_row.SeriesNumber, series_row.NumberOfSeriesRelatedInstances) == ("MR", 1, 3)


def test_image_responses_carry_binary_values(server: DimseServer, tmp_path: Path) -> None:
    (row,) = findscu(server, "S", "IMAGE", [f"SOPInstanceUID={sop('C', 1, 1)}", "SOPClassUID", "Rows",
                     "Columns", "InstanceNumber"], tmp_path / "rsp")
    assert (row.SOPClassUID, row.Rows, row.Columns, row.InstanceNumber) == (DATA["C"][0].SOPClassUID, 8, 8, 1)


def test_unicode_names_are_matched_and_returned(server: DimseServer, tmp_path: Path) -> None:
    (row,) = findscu(server, "P", "PATIENT", ["SpecificCharacterSet=ISO_IR 192", "PatientID", "PatientName=Mü*"],
                     tmp_path / "rsp")
    assert (row.PatientID, str(row.PatientName)) == ("TPD", UNICODE_NAME)


@pytest.mark.filterwarnings("ignore:Invalid value for VR")  # the client is told to send them
@pytest.mark.parametrize(("model", "identifier"), [
    (StudyRootQueryRetrieveInformationModelFind, {"QueryRetrieveLevel": "SERIESX"}),
    (StudyRootQueryRetrieveInformationModelFind, {}),
    (StudyRootQueryRetrieveInformationModelFind, {"QueryRetrieveLevel": "PATIENT"}),
    (PatientRootQueryRetrieveInformationModelFind, {"QueryRetrieveLevel": "STUDY", "StudyDate": "2024-01"}),
    (PatientRootQueryRetrieveInformationModelFind, {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": "1.02"}),
], ids=["unknown level", "no level", "patient level in study root", "bad date range", "bad uid"])
def test_bad_queries_fail_with_a_comment(server: DimseServer, model: str, identifier: dict[str, str]) -> None:
    query = Dataset()
    for keyword, value in {**identifier, "PatientID": ""}.items():
        setattr(query, keyword, value)
    with association(server.port, [build_context(model)]) as assoc:
        responses = list(assoc.send_c_find(query, model))
    assert len(responses) == 1
    status, found = responses[0]
    assert status.Status == 0xA900 and status.ErrorComment and found is None


def test_cancel_ends_the_matching(server: DimseServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    total = 5000

    def slow_index(query: object) -> Iterator[dict[str, str]]:
        for n in range(total):
            time.sleep(0.001)  # an index slower than the network: the C-CANCEL arrives mid-way
            yield {"PatientID": f"P{n}"}

    monkeypatch.setattr(server.site.archive, "find", slow_index)
    result = dcmtk("findscu", "-P", "-v", "--cancel", "1", "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID",
                   HOST, server.port)
    assert "Received Final Find Response (Cancel" in result.stderr
    assert 1 <= result.stderr.count("Find Response: ") < total


@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian],
                         ids=lambda s: UID(s).keyword)
def test_responses_are_the_same_in_every_transfer_syntax(server: DimseServer, syntax: str) -> None:
    """Little endian responses are encoded directly (dimse/identifiers.py), big endian by pydicom."""
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study("D")
    for keyword in ("PatientName", "ModalitiesInStudy", "NumberOfStudyRelatedInstances", "StudyDate",
                    "InstitutionName"):
        setattr(query, keyword, "")
    query.ReferencedStudySequence = []
    model = StudyRootQueryRetrieveInformationModelFind
    with association(server.port, [build_context(model, syntax)]) as assoc:
        found = [ds for status, ds in assoc.send_c_find(query, model) if status.Status == 0xFF00]
    assert len(found) == 1
    (row,) = found
    assert (str(row.PatientName), row.ModalitiesInStudy, row.NumberOfStudyRelatedInstances, row.StudyDate) == (
        UNICODE_NAME, "OT", 1, "20230615")
    assert row.InstitutionName == "" and list(row.ReferencedStudySequence) == []
    assert (row.SpecificCharacterSet, row.QueryRetrieveLevel, row.RetrieveAETitle) == ("ISO_IR 192", "STUDY", "TWINPACS")
