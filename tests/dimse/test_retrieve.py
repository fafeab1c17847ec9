"""C-GET and C-MOVE: what leaves is byte for byte what was stored."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from twinpacs.dimse import DimseServer
from twinpacs.synthetic import write_study

from .conftest import (
    HOST,
    SYNTAXES,
    StartServer,
    dataset_bytes,
    dcmtk,
    spec,
    store_files,
    write_files,
)

# getscu proposes one context per storage SOP class: [preferred syntax, uncompressed ones].
# No flag names 1.2.840.10008.1.2.4.57, and DCMTK 3.6.7's +xi proposes explicit VR: C-MOVE covers those.
GETSCU_PREFER = {
    ExplicitVRLittleEndian: "+xe", ExplicitVRBigEndian: "+xb",
    DeflatedExplicitVRLittleEndian: "+xd", RLELossless: "+xr", JPEG2000Lossless: "+xv",
    JPEGBaseline8Bit: "+xy", JPEGLosslessSV1: "+xs", JPEGLSLossless: "+xt",
}


def identifier(level: str, **keys: str) -> list[str]:
    return [f"QueryRetrieveLevel={level}", *(f"{k}={v}" for k, v in keys.items())]


def k_args(keys: list[str]) -> list[str]:
    return [a for key in keys for a in ("-k", key)]


def getscu(server: DimseServer, folder: Path, keys: list[str], *options: str) -> dict[str, bytes]:
    """Run getscu writing what it receives bit for bit; SOP Instance UID -> file bytes."""
    folder.mkdir()
    dcmtk("getscu", "+B", "-od", folder, *options, *k_args(keys), HOST, server.port)
    return received(folder)


def received(folder: Path) -> dict[str, bytes]:
    return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p.read_bytes() for p in folder.iterdir()}


def by_uid(files: list[Path]) -> dict[str, bytes]:
    return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p.read_bytes() for p in files}


def assert_identical(got: dict[str, bytes], sent: dict[str, bytes]) -> None:
    assert sorted(got) == sorted(sent)
    for uid, data in got.items():
        assert dataset_bytes(data) == dataset_bytes(sent[uid]), uid


@pytest.fixture
def two_patients(server: DimseServer, tmp_path: Path) -> list[Path]:
    """Patient TP0001 with two series of two instances; another patient who must never come back."""
    files = write_study(spec(series=2), tmp_path / "wanted")
    store_files(server, files)
    store_files(server, write_study(spec(patient_id="OTHER", seed=7), tmp_path / "other"))
    return files


def _level_keys(files: list[Path]) -> dict[str, tuple[list[str], list[Path]]]:
    first = dcmread(files[0])
    series_files = [p for p in files if dcmread(p).SeriesInstanceUID == first.SeriesInstanceUID]
    return {
        "PATIENT": (["-P", *k_args(identifier("PATIENT", PatientID="TP0001"))], files),
        "STUDY": (["-S", *k_args(identifier("STUDY", StudyInstanceUID=first.StudyInstanceUID))], files),
        "SERIES": (["-S", *k_args(identifier("SERIES", StudyInstanceUID=first.StudyInstanceUID,
                                             SeriesInstanceUID=first.SeriesInstanceUID))], series_files),
        "IMAGE": (["-S", *k_args(identifier("IMAGE", StudyInstanceUID=first.StudyInstanceUID,
                                            SeriesInstanceUID=first.SeriesInstanceUID,
                                            SOPInstanceUID=first.SOPInstanceUID))], files[:1]),
    }


@pytest.mark.parametrize("level", ["PATIENT", "STUDY", "SERIES", "IMAGE"])
def test_getscu_at_each_level(server: DimseServer, two_patients: list[Path], level: str, tmp_path: Path) -> None:
    options, expected = _level_keys(two_patients)[level]
    got = getscu(server, tmp_path / "got", [], *options)
    assert_identical(got, by_uid(expected))


@pytest.mark.parametrize("syntax", list(GETSCU_PREFER), ids=lambda s: UID(s).keyword)
def test_getscu_gets_each_syntax_as_stored(server: DimseServer, syntax: UID, tmp_path: Path) -> None:
    files = write_files(syntax, tmp_path / "sent")
    store_files(server, files)
    keys = identifier("STUDY", StudyInstanceUID=dcmread(files[0]).StudyInstanceUID)
    assert_identical(getscu(server, tmp_path / "got", keys, "-S", GETSCU_PREFER[syntax]), by_uid(files))


def test_a_file_in_another_uncompressed_syntax_than_accepted_is_converted(
    server: DimseServer, tmp_path: Path,
) -> None:
    files = write_files(ImplicitVRLittleEndian, tmp_path / "sent")
    store_files(server, files)
    keys = identifier("STUDY", StudyInstanceUID=dcmread(files[0]).StudyInstanceUID)
    got = getscu(server, tmp_path / "got", keys, "-S")  # one context: explicit VR accepted
    sent = by_uid(files)
    assert sorted(got) == sorted(sent)
    for uid, data in got.items():
        converted, original = dcmread(io.BytesIO(data)), dcmread(io.BytesIO(sent[uid]))
        assert converted.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert converted == original  # every element, pixel data included


@pytest.mark.parametrize("syntax", SYNTAXES, ids=lambda s: UID(s).keyword)
def test_movescu_to_storescp_moves_each_syntax_as_stored(
    start_server: StartServer, storescp: tuple[str, int, Path], syntax: UID, tmp_path: Path,
) -> None:
    ae_title, port, folder = storescp
    server = start_server({ae_title: f"{HOST}:{port}"})
    files = write_files(syntax, tmp_path / "sent")
    store_files(server, files)
    keys = identifier("STUDY", StudyInstanceUID=dcmread(files[0]).StudyInstanceUID)
    result = dcmtk("movescu", "-v", "-S", "-aem", ae_title, *k_args(keys), HOST, server.port)
    assert "Received Final Move Response (Success)" in result.stderr
    assert_identical(received(folder), by_uid(files))
