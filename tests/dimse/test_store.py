"""C-STORE: every accepted transfer syntax stored as sent; duplicates, conflicts, bad input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import UID
from pynetdicom import build_context

from twinpacs.dimse import DimseServer
from twinpacs.synthetic import encode, make_study

from .conftest import (
    SYNTAXES,
    association,
    dataset_bytes,
    dcmtk,
    dcmtk_profile,
    spec,
    write_files,
)

NOTHING = {"patients": 0, "studies": 0, "series": 0, "instances": 0}


def stored_bytes(server: DimseServer, sop_instance_uid: str) -> bytes:
    archive = server.site.archive
    path = archive.path(archive.instances(sop=sop_instance_uid)[0])
    assert path is not None
    return path.read_bytes()


@pytest.mark.parametrize("syntax", SYNTAXES, ids=lambda s: UID(s).keyword)
def test_storescu_is_stored_in_the_syntax_it_sent(server: DimseServer, syntax: UID, tmp_path: Path) -> None:
    files = write_files(syntax, tmp_path)
    # One proposed context: storescu converts nothing, unlike with its flags (which cannot name every syntax).
    config = dcmtk_profile(tmp_path / "storescu.cfg", [dcmread(files[0]).SOPClassUID], [syntax])
    dcmtk("storescu", "-xf", config, "Twinpacs", "127.0.0.1", server.port, *files)
    assert server.site.index.counts()["instances"] == len(files)
    for path in files:
        sent = dcmread(path)
        stored = dcmread(io.BytesIO(stored_bytes(server, sent.SOPInstanceUID)))
        assert stored.file_meta.TransferSyntaxUID == syntax  # never transcoded on the way in
        assert stored.PixelData == sent.PixelData


def test_the_received_bytes_are_the_stored_bytes(server: DimseServer, tmp_path: Path) -> None:
    files = [f for n, syntax in enumerate(SYNTAXES) for f in write_files(syntax, tmp_path / UID(syntax).keyword, n)]
    metas = [dcmread(f, stop_before_pixels=True).file_meta for f in files]
    pairs = dict.fromkeys((m.MediaStorageSOPClassUID, m.TransferSyntaxUID) for m in metas)
    with association(server.port, [build_context(*pair) for pair in pairs]) as assoc:
        for path in files:  # a path is streamed as it is (the server enabled chunked sending)
            assert assoc.send_c_store(path).Status == 0x0000
    for path, meta in zip(files, metas, strict=True):
        assert dataset_bytes(stored_bytes(server, meta.MediaStorageSOPInstanceUID)) == dataset_bytes(path.read_bytes())


def _send(server: DimseServer, *objects: bytes, tmp_path: Path) -> list[object]:
    """C-STORE each object as its exact bytes; the response statuses."""
    responses = []
    paths = []
    for n, data in enumerate(objects):
        paths.append(tmp_path / f"object{n}.dcm")
        paths[-1].write_bytes(data)
    metas = [dcmread(p, stop_before_pixels=True).file_meta for p in paths]
    contexts = {(m.MediaStorageSOPClassUID, m.TransferSyntaxUID) for m in metas}
    with association(server.port, [build_context(c, t) for c, t in contexts]) as assoc:
        for path in paths:
            responses.append(assoc.send_c_store(path))
    return responses


def test_an_identical_object_again_is_a_plain_success(server: DimseServer, tmp_path: Path) -> None:
    data = encode(make_study(spec())[0])
    first, second = _send(server, data, data, tmp_path=tmp_path)
    assert (first.Status, second.Status) == (0x0000, 0x0000)  # type: ignore[attr-defined]
    figures = server.site.archive.figures()
    assert (figures["instances"], figures["duplicates_received"]) == (1, 1)


def test_other_content_for_a_held_instance_is_a_warning_and_both_are_kept(server: DimseServer, tmp_path: Path) -> None:
    original = encode(make_study(spec())[0])
    corrected = encode(make_study(spec(patient_name="Corrected^Name"))[0])  # same UIDs
    first, second = _send(server, original, corrected, tmp_path=tmp_path)
    assert first.Status == 0x0000  # type: ignore[attr-defined]
    assert second.Status == 0xB000  # type: ignore[attr-defined]
    assert "both kept" in second.ErrorComment  # type: ignore[attr-defined]
    assert server.site.index.counts()["instances"] == 1
    assert len(server.site.archive.conflicts()) == 1


def _broken(change: str) -> bytes:
    ds = make_study(spec())[0]
    if change == "no SOPInstanceUID":
        del ds.SOPInstanceUID
    elif change == "no StudyInstanceUID":
        del ds.StudyInstanceUID
    else:
        ds.SeriesInstanceUID = "1.2.03.not-a-uid"
    return encode(ds)


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # the point of the test
@pytest.mark.parametrize("change", ["no SOPInstanceUID", "no StudyInstanceUID", "invalid UID"])
def test_bad_objects_fail_and_nothing_is_stored(server: DimseServer, change: str, tmp_path: Path) -> None:
    (response,) = _send(server, _broken(change), tmp_path=tmp_path)
    assert response.Status == 0xA900  # type: ignore[attr-defined]
    assert response.ErrorComment  # type: ignore[attr-defined]
    assert server.site.index.counts() == NOTHING
    assert not [p for p in (server.site.settings.site.data_dir / "store").rglob("*") if p.is_file()]


@pytest.mark.parametrize(("error", "status"), [(OSError("disk full"), 0xA700), (RuntimeError("bug"), 0xC000)])
def test_unexpected_errors_become_failure_statuses(
    server: DimseServer, error: Exception, status: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fail(data: bytes, source: str = "") -> None:
        raise error

    monkeypatch.setattr(server.site.archive, "store", fail)
    (response,) = _send(server, encode(make_study(spec())[0]), tmp_path=tmp_path)
    assert response.Status == status  # type: ignore[attr-defined]
    assert "Traceback" not in str(response.get("ErrorComment", ""))  # type: ignore[attr-defined]
