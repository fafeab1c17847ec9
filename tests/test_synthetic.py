"""The synthetic DICOM generator: deterministic, readable back, distinct studies."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.pixels import get_decoder
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    MRImageStorage,
    SecondaryCaptureImageStorage,
)

from twinpacs.synthetic import (
    SUPPORTED_TRANSFER_SYNTAXES,
    StudySpec,
    available_transfer_syntaxes,
    encode,
    make_studies,
    make_study,
    write_study,
)

SMALL = StudySpec(series=1, instances_per_series=2, rows=32, columns=48)
REQUIRED = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
            "SeriesInstanceUID", "SOPInstanceUID", "StudyDate", "StudyTime", "SeriesDate",
            "AccessionNumber", "StudyID", "StudyDescription", "SeriesDescription",
            "ReferringPhysicianName", "Modality", "SeriesNumber", "InstanceNumber",
            "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
            "WindowCenter", "WindowWidth", "RescaleIntercept", "RescaleSlope", "BodyPartExamined")


def _read(data: bytes):
    return dcmread(io.BytesIO(data))


def test_same_spec_gives_identical_bytes(tmp_path: Path) -> None:
    spec = replace(SMALL, seed=7, accession_number="A1")
    assert [encode(d) for d in make_study(spec)] == [encode(d) for d in make_study(spec)]
    first, second = write_study(spec, tmp_path / "a"), write_study(spec, tmp_path / "b")
    assert [p.name for p in first] == [p.name for p in second]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, second))


def test_part10_file_and_attributes() -> None:
    datasets = make_study(replace(SMALL, series=2, accession_number="ACC1"))
    assert len(datasets) == 4
    data = encode(datasets[0])
    assert data[128:132] == b"DICM"
    ds = _read(data)
    meta = ds.file_meta
    assert meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert meta.MediaStorageSOPClassUID == ds.SOPClassUID == CTImageStorage
    assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert meta.ImplementationClassUID
    missing = [kw for kw in REQUIRED if kw not in ds]
    assert not missing
    assert (ds.Rows, ds.Columns, ds.BitsAllocated) == (32, 48, 16)
    assert ds.PhotometricInterpretation == "MONOCHROME2"
    assert ds.pixel_array.shape == (32, 48) and ds.pixel_array.dtype == np.uint16
    for uid in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID):
        assert uid.is_valid
    assert {d.SeriesNumber for d in datasets} == {1, 2}
    assert len({d.SOPInstanceUID for d in datasets}) == 4
    assert len({d.SeriesInstanceUID for d in datasets}) == 2
    assert len({d.StudyInstanceUID for d in datasets}) == 1


@pytest.mark.parametrize("ts", SUPPORTED_TRANSFER_SYNTAXES, ids=lambda ts: ts.keyword)
def test_transfer_syntax_round_trip(ts: str) -> None:
    if ts not in available_transfer_syntaxes():
        pytest.skip(f"no encoder for {ts.name} on this machine")
    spec = replace(SMALL, transfer_syntax=ts)
    data = [encode(d) for d in make_study(spec)]
    assert data == [encode(d) for d in make_study(spec)]  # deterministic for every syntax
    ds = _read(data[0])
    assert ds.file_meta.TransferSyntaxUID == ts
    if not get_decoder(ts).is_available:
        pytest.skip(f"no decoder for {ts.name} installed")
    pixels = ds.pixel_array
    assert pixels.shape == (spec.rows, spec.columns)
    if ts == JPEGBaseline8Bit:  # lossy 8-bit rendering
        assert ds.BitsAllocated == 8 and pixels.dtype == np.uint8 and pixels.std() > 0
    else:  # lossless: exactly the native pixels
        native = make_study(replace(spec, transfer_syntax=ExplicitVRLittleEndian))[0]
        assert np.array_equal(pixels, native.pixel_array)
        assert ds.SOPInstanceUID == native.SOPInstanceUID


def test_lossy_copy_gets_new_instance_uid() -> None:
    lossless = make_study(SMALL)[0]
    lossy = make_study(replace(SMALL, transfer_syntax=JPEGBaseline8Bit))[0]
    assert lossy.SOPInstanceUID != lossless.SOPInstanceUID
    assert lossy.StudyInstanceUID == lossless.StudyInstanceUID


@pytest.mark.parametrize("modality, sop_class", [
    ("CT", CTImageStorage), ("MR", MRImageStorage), ("CR", ComputedRadiographyImageStorage),
    ("OT", SecondaryCaptureImageStorage), ("US", SecondaryCaptureImageStorage)])
def test_sop_class_per_modality(modality: str, sop_class: str) -> None:
    ds = _read(encode(make_study(replace(SMALL, modality=modality))[0]))
    assert ds.SOPClassUID == sop_class and ds.Modality == modality


def test_distinct_studies_have_distinct_uids() -> None:
    specs = make_studies(6, replace(SMALL, patient_id="P"))
    assert len({(s.patient_id, s.seed, s.study_date, s.accession_number) for s in specs}) == 6
    assert all(len({getattr(s, f) for s in specs}) == 6
               for f in ("patient_id", "seed", "study_date", "accession_number"))
    studies = [make_study(s) for s in specs]
    assert len({st[0].StudyInstanceUID for st in studies}) == 6
    sops = [d.SOPInstanceUID for st in studies for d in st]
    assert len(set(sops)) == len(sops)
    # Different pixels too, not just different headers.
    assert not np.array_equal(studies[0][0].pixel_array, studies[1][0].pixel_array)


def test_same_seed_other_patient_does_not_collide() -> None:
    a = make_study(replace(SMALL, patient_id="A"))[0]
    b = make_study(replace(SMALL, patient_id="B"))[0]
    assert a.StudyInstanceUID != b.StudyInstanceUID and a.SOPInstanceUID != b.SOPInstanceUID


def test_patient_demographics_stable_across_studies() -> None:
    one = make_study(replace(SMALL, patient_id="SAME", seed=1))[0]
    two = make_study(replace(SMALL, patient_id="SAME", seed=2, study_date="20250101"))[0]
    assert (one.PatientBirthDate, one.PatientSex) == (two.PatientBirthDate, two.PatientSex)
    assert one.StudyInstanceUID != two.StudyInstanceUID


def test_unsupported_transfer_syntax_is_refused() -> None:
    with pytest.raises(ValueError):
        make_study(replace(SMALL, transfer_syntax="1.2.840.10008.1.2.2"))  # big endian


def test_uid_inputs_do_not_run_together() -> None:
    # (series 1, instance 12) vs (series 11, instance 2) once hashed to the same text.
    datasets = make_study(replace(SMALL, series=11, instances_per_series=12, rows=8, columns=8))
    sops = [d.SOPInstanceUID for d in datasets]
    assert len(set(sops)) == len(sops) == 132
