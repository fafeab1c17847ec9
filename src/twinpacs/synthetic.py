"""Deterministic synthetic DICOM studies for tests and benchmarks.

Everything here is invented: names, IDs and pixels come from the spec and its seed,
never from real patients. The same StudySpec always yields byte-identical files
(given the pinned pydicom/numpy/Pillow and, for DCMTK-encoded syntaxes, DCMTK).

UIDs are derived from (seed, patient_id) plus series/instance indices, so changing
only e.g. patient_name or transfer_syntax keeps the UIDs (handy for "same object,
corrected metadata" tests); two specs differing in seed or patient_id never collide.
Lossy syntaxes get their own SOP Instance UIDs, as the standard requires.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
import subprocess
import tempfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom import Dataset, dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filewriter import dcmwrite
from pydicom.uid import (PYDICOM_IMPLEMENTATION_UID, UID, ComputedRadiographyImageStorage,
                         CTImageStorage, DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian,
                         ImplicitVRLittleEndian, JPEG2000Lossless, JPEGBaseline8Bit, JPEGLossless,
                         JPEGLosslessSV1, JPEGLSLossless, MRImageStorage, RLELossless,
                         SecondaryCaptureImageStorage, generate_uid)

_SOP_CLASS = {"CT": CTImageStorage, "MR": MRImageStorage, "CR": ComputedRadiographyImageStorage}
_NATIVE = (ImplicitVRLittleEndian, ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian)
# pydicom has no encoder for these; DCMTK's command-line codecs do (used only if on PATH).
_DCMTK_ENCODERS: dict[str, list[str]] = {
    JPEGLossless: ["dcmcjpeg", "+el", "+sv", "1"],  # Process 14, selection value 1
    JPEGLosslessSV1: ["dcmcjpeg", "+e1"],
    JPEGLSLossless: ["dcmcjpls", "+el"],
}
SUPPORTED_TRANSFER_SYNTAXES: tuple[UID, ...] = (
    *_NATIVE, RLELossless, JPEG2000Lossless, JPEGBaseline8Bit, *map(UID, _DCMTK_ENCODERS),
)
_NAMES = ("Alder^Ann", "Birch^Ben", "Cedar^Cleo", "Dogwood^Dan", "Elm^Eva", "Fir^Finn",
          "Gum^Gale", "Hazel^Hugo", "Ivy^Iris", "Juniper^Jon", "Kapok^Kim", "Larch^Leo")


@dataclass(frozen=True)
class StudySpec:
    patient_id: str = "TP0001"
    patient_name: str = "Test^Patient"
    study_date: str = "20261130"
    modality: str = "CT"
    series: int = 2
    instances_per_series: int = 5
    rows: int = 64
    columns: int = 64
    accession_number: str = ""
    seed: int = 0
    study_description: str = "Synthetic CT"
    transfer_syntax: str = ExplicitVRLittleEndian


def available_transfer_syntaxes() -> list[UID]:
    """The supported syntaxes whose encoder is usable on this machine."""
    return [ts for ts in SUPPORTED_TRANSFER_SYNTAXES
            if ts not in _DCMTK_ENCODERS or shutil.which(_DCMTK_ENCODERS[ts][0])]


def _uid(spec: StudySpec, *parts: object) -> UID:
    # generate_uid hashes "".join(entropy_srcs); join with a separator ourselves, or
    # (series 1, instance 12) and (series 11, instance 2) would get the same UID.
    key = "\x1f".join(map(str, ("twinpacs-synthetic", spec.seed, spec.patient_id, *parts)))
    return generate_uid(entropy_srcs=[key])


def _pixels(spec: StudySpec, series: int, instance: int) -> np.ndarray:
    """12-bit CT-like phantom (stored value = HU + 1024) with seeded noise."""
    y, x = np.mgrid[-1:1:spec.rows * 1j, -1:1:spec.columns * 1j]
    img = np.zeros((spec.rows, spec.columns), dtype=np.float64)
    img[(x / 0.85) ** 2 + (y / 0.7) ** 2 <= 1] = 1024 + 40  # soft-tissue body
    img[np.abs(np.hypot(x / 0.85, y / 0.7) - 0.9) < 0.04] = 1024 + 700  # bony rim
    r = 0.08 + 0.06 * np.sin(instance / 3 + series)  # lesion changes along the series
    img[np.hypot(x - 0.3, y + 0.2) < abs(r)] = 1024 + 120
    rng = np.random.default_rng([spec.seed, series, instance])
    img += rng.normal(0.0, 12.0, img.shape)  # noise keeps compression ratios realistic
    return np.clip(np.rint(img), 0, 4095).astype(np.uint16)


def _patient_demographics(patient_id: str) -> tuple[str, str]:
    # From the patient ID (not the seed) so one patient looks the same in every study.
    h = zlib.crc32(patient_id.encode())
    birth = dt.date(1940, 1, 1) + dt.timedelta(days=h % (60 * 365))
    return birth.strftime("%Y%m%d"), "FM"[h % 2]


def _base_dataset(spec: StudySpec, series: int, instance: int) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = _SOP_CLASS.get(spec.modality, SecondaryCaptureImageStorage)
    lossy = spec.transfer_syntax == JPEGBaseline8Bit
    ds.SOPInstanceUID = _uid(spec, "instance", series, instance, *(["lossy"] if lossy else []))
    ds.StudyInstanceUID = _uid(spec, "study")
    ds.SeriesInstanceUID = _uid(spec, "series", series)
    ds.FrameOfReferenceUID = _uid(spec, "frame-of-reference")
    ds.PatientName = spec.patient_name
    ds.PatientID = spec.patient_id
    ds.PatientBirthDate, ds.PatientSex = _patient_demographics(spec.patient_id)
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = spec.study_date
    ds.StudyTime = f"{8 + spec.seed % 10:02d}{spec.seed * 7 % 60:02d}00"
    ds.SeriesTime = ds.ContentTime = ds.StudyTime
    ds.AccessionNumber = spec.accession_number
    ds.StudyID = f"S{spec.seed}"[:16]
    ds.StudyDescription = spec.study_description
    ds.SeriesDescription = f"Synthetic {spec.modality} series {series}"
    ds.ReferringPhysicianName = "Referrer^Synthetic"
    ds.Manufacturer = "twinpacs-synthetic"
    ds.Modality = spec.modality
    ds.BodyPartExamined = "CHEST"
    ds.SeriesNumber = series
    ds.InstanceNumber = ds.AcquisitionNumber = instance
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PositionReferenceIndicator = ""
    spacing, thickness = 350.0 / max(spec.rows, spec.columns), 5.0
    z = -(instance - 1) * thickness
    ds.ImagePositionPatient = [f"{-spacing * spec.columns / 2:.3f}",
                               f"{-spacing * spec.rows / 2:.3f}", f"{z:.1f}"]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [f"{spacing:.4f}", f"{spacing:.4f}"]
    ds.SliceThickness = f"{thickness:.1f}"
    ds.SliceLocation = f"{z:.1f}"
    ds.WindowCenter, ds.WindowWidth = 40, 400
    ds.RescaleIntercept, ds.RescaleSlope = (-1024 if spec.modality == "CT" else 0), 1
    ds.RescaleType = "HU" if spec.modality == "CT" else "US"
    if spec.modality == "CT":
        ds.KVP = 120
    elif spec.modality == "MR":  # type 1/2 attributes of the MR Image module
        ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = "SE", "NONE", ""
        ds.MRAcquisitionType, ds.EchoTime, ds.RepetitionTime = "2D", 20, 500
    elif spec.modality == "CR":
        ds.ViewPosition = "PA"
    else:
        ds.ConversionType = "WSD"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = spec.rows, spec.columns
    return ds


def _set_native_pixels(ds: Dataset, arr: np.ndarray) -> None:
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = arr.astype("<u2").tobytes()
    ds["PixelData"].VR = "OW"


def _set_encapsulated(ds: Dataset, pixel_data: bytes) -> None:
    ds.PixelData = pixel_data
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True


def _jpeg_baseline(ds: Dataset, arr: np.ndarray) -> None:
    """8-bit display rendering (soft-tissue window) compressed with Pillow's libjpeg.

    Strictly the CT IOD requires 16 bits; archives do not care, and this is how many
    real lossy exports look.
    """
    hu = arr.astype(np.float64) - 1024
    arr8 = np.clip((hu - (40 - 200)) * 255 / 400, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr8, mode="L").save(buf, format="JPEG", quality=90, optimize=False)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.WindowCenter, ds.WindowWidth = 128, 256
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    ds.LossyImageCompressionRatio = f"{arr.nbytes / len(buf.getvalue()):.2f}"
    _set_encapsulated(ds, encapsulate([buf.getvalue()]))


def _dcmtk_encode(ds: Dataset, ts: str) -> None:
    """Compress with a DCMTK tool, keeping only its pixel data (our header stays)."""
    cmd = _DCMTK_ENCODERS[ts]
    if not shutil.which(cmd[0]):
        raise ValueError(f"{UID(ts).name} needs DCMTK's {cmd[0]} on PATH")
    with tempfile.TemporaryDirectory(prefix="twinpacs-synth-") as tmp:
        src, dst = Path(tmp) / "in.dcm", Path(tmp) / "out.dcm"
        src.write_bytes(encode(ds))
        subprocess.run([*cmd, "-q", str(src), str(dst)], check=True, timeout=60)
        _set_encapsulated(ds, dcmread(dst).PixelData)  # already encapsulated, with offset table


def _file_meta(ds: Dataset, ts: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ts
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "TWINPACS_SYN"
    return meta


def _make_instance(spec: StudySpec, series: int, instance: int) -> Dataset:
    ts = UID(spec.transfer_syntax)
    ds = _base_dataset(spec, series, instance)
    arr = _pixels(spec, series, instance)
    _set_native_pixels(ds, arr)
    ds.file_meta = _file_meta(ds, ExplicitVRLittleEndian)
    if ts in _NATIVE:
        ds.file_meta.TransferSyntaxUID = ts  # the writer does implicit VR / deflate itself
    elif ts in (RLELossless, JPEG2000Lossless):
        plugin = "pydicom" if ts == RLELossless else "pylibjpeg"
        ds.compress(ts, arr, encoding_plugin=plugin, generate_instance_uid=False)
    elif ts == JPEGBaseline8Bit:
        _jpeg_baseline(ds, arr)
        ds.file_meta.TransferSyntaxUID = ts
    else:
        _dcmtk_encode(ds, ts)
        ds.file_meta.TransferSyntaxUID = ts
    return ds


def make_study(spec: StudySpec) -> list[Dataset]:
    """All instances of one study, series by series, each with file meta set."""
    if spec.transfer_syntax not in SUPPORTED_TRANSFER_SYNTAXES:
        raise ValueError(f"unsupported transfer syntax {spec.transfer_syntax}")
    return [_make_instance(spec, s, i)
            for s in range(1, spec.series + 1)
            for i in range(1, spec.instances_per_series + 1)]


def encode(ds: Dataset) -> bytes:
    """Part 10 file bytes: 128-byte preamble, 'DICM', file meta, data set."""
    buf = io.BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def write_study(spec: StudySpec, folder: Path) -> list[Path]:
    """Write one .dcm per instance; names sort by series/instance and never collide."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in make_study(spec):
        path = folder / f"{ds.SeriesNumber:03d}-{ds.InstanceNumber:05d}-{ds.SOPInstanceUID}.dcm"
        path.write_bytes(encode(ds))
        paths.append(path)
    return paths


def make_studies(count: int, base: StudySpec) -> list[StudySpec]:
    """`count` distinct studies: own patient, seed, accession; dates over ~2 years."""
    start = dt.datetime.strptime(base.study_date, "%Y%m%d").date()
    specs = []
    for k in range(count):
        seed = base.seed + k
        # 97 is coprime to 730, so the first 730 studies fall on distinct days.
        day = start - dt.timedelta(days=k * 97 % 730)
        family, given = _NAMES[k % len(_NAMES)].split("^")
        specs.append(replace(base, seed=seed, patient_id=f"{base.patient_id}-{k:05d}",
                             patient_name=f"{family}^{given}{k // len(_NAMES) or ''}",
                             study_date=day.strftime("%Y%m%d"),
                             accession_number=f"ACC{seed:08d}"))
    return specs
