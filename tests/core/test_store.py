"""Store behaviour (G1, G2) on every index backend."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import func, select

from tests.conftest import stored_files
from twinpacs.core.archive import Archive, StoreStatus
from twinpacs.errors import InvalidUID, InvalidValue, MissingAttribute, NotDicom
from twinpacs.index.schema import changes, outbox
from twinpacs.storage.filesystem import FilesystemBlobStore
from twinpacs.synthetic import StudySpec, encode, make_study

SPEC = StudySpec(series=2, instances_per_series=3, rows=16, columns=16)


def _files(spec: StudySpec = SPEC) -> list[bytes]:
    return [encode(ds) for ds in make_study(spec)]


def test_store_then_find_every_instance(archive: Archive) -> None:
    for data in _files():
        assert archive.store(data, "TEST").status is StoreStatus.STORED
    assert archive.index.counts() == {"patients": 1, "studies": 1, "series": 2, "instances": 6}
    study_uid = make_study(SPEC)[0].StudyInstanceUID
    found = archive.instances(study=study_uid)
    assert [archive.read(i) for i in found] == _files()  # stored as sent, in instance order


def test_identical_object_again_writes_nothing(archive: Archive, tmp_path: Path) -> None:
    data = _files()[0]
    first = archive.store(data, "A")
    files_before = stored_files(tmp_path / "store")
    again = archive.store(data, "B")
    assert (first.status, first.bytes_written) == (StoreStatus.STORED, len(data))
    assert (again.status, again.bytes_written) == (StoreStatus.DUPLICATE, 0)
    assert stored_files(tmp_path / "store") == files_before
    figures = archive.figures()
    assert figures["bytes_received"] == 2 * len(data) and figures["bytes_written"] == len(data)
    assert figures["bytes_written_per_byte_received"] == 0.5


def _conflicting(data: bytes) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.PatientName = "Corrected^Name"
    return encode(ds)


def test_conflict_keeps_first_and_lists_the_other(archive: Archive) -> None:
    data = _files()[0]
    archive.store(data, "A")
    result = archive.store(_conflicting(data), "B")
    assert result.status is StoreStatus.CONFLICT
    (conflict,) = archive.conflicts()
    assert conflict["content_hash"] == result.content_hash and conflict["source"] == "B"
    current = archive.instances(sop=result.sop_instance_uid)[0]
    assert archive.read(current) == data
    assert archive.blobs.exists(result.content_hash)  # the other version is kept too


def test_newer_wins_keeps_the_older_version(index, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    archive = Archive(FilesystemBlobStore(tmp_path / "nw"), index, conflict_policy="newer-wins")
    data = _files()[0]
    old = archive.store(data, "A")
    new = archive.store(_conflicting(data), "B")
    assert archive.read(archive.instances(sop=new.sop_instance_uid)[0]) == _conflicting(data)
    assert archive.conflicts()[0]["content_hash"] == old.content_hash
    assert archive.blobs.exists(old.content_hash)


def test_resolving_a_conflict_swaps_without_deleting(archive: Archive) -> None:
    data = _files()[0]
    first = archive.store(data, "A")
    second = archive.store(_conflicting(data), "B")
    archive.resolve_conflict(archive.conflicts()[0]["id"], keep="version")
    assert archive.conflicts() == []
    assert archive.index.current_hash(first.sop_instance_uid) == second.content_hash
    kept = [v["content_hash"] for v in archive.conflicts(state=None)]
    assert first.content_hash in kept and archive.blobs.exists(first.content_hash)


@pytest.mark.parametrize(
    "mutate, error",
    [
        (lambda b: b"not dicom at all" * 10, NotDicom),
        (lambda b: b[: len(b) - 100], NotDicom),
        (lambda b: b[:300], NotDicom),
        (lambda b: _without(b, "SOPInstanceUID"), MissingAttribute),
        (lambda b: _without(b, "StudyInstanceUID"), MissingAttribute),
        (lambda b: _with(b, "SeriesInstanceUID", "1.2.03.abc"), InvalidUID),
        (lambda b: _two_group_lengths(b), NotDicom),
        (lambda b: _with(b, "StudyDescription", "CT\x00thorax"), InvalidValue),
        (lambda b: _with(b, "StudyDescription", "x" * 300), InvalidValue),
        (lambda b: _dataset_cut_inside_first_header(b), NotDicom),
    ],
    ids=["not-dicom", "truncated-pixels", "truncated-header", "no-sop-uid", "no-study-uid", "bad-uid",
         "two-group-lengths", "nul-in-text", "longer-than-any-vr", "cut-inside-first-element-header"],
)
def test_bad_input_stores_nothing(archive: Archive, tmp_path: Path, mutate, error) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error):
        archive.store(mutate(_files()[0]), "BAD")
    assert archive.index.counts()["instances"] == 0
    assert stored_files(tmp_path / "store") == []


def _dataset_cut_inside_first_header(data: bytes) -> bytes:
    """The file meta, then 8 bytes of an OB element's 12-byte header (its length missing)."""
    offset = 144 + int.from_bytes(data[140:144], "little")
    return data[:offset] + b"\x09\x00\x10\x00OB\x00\x00"


def _without(data: bytes, keyword: str) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    del ds[keyword]
    return encode(ds)


def _with(data: bytes, keyword: str, value: str) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    setattr(ds, keyword, value)
    return encode(ds)


def test_store_queues_replication_in_the_same_transaction(archive: Archive) -> None:
    archive.peers = ["site-b", "orthanc"]
    archive.store(_files()[0], "A")
    with archive.index.db.read() as conn:  # type: ignore[attr-defined]
        assert conn.execute(select(func.count()).select_from(changes)).scalar_one() == 1
        rows = conn.execute(select(outbox.c.peer, outbox.c.state)).all()
    assert sorted(rows) == [("orthanc", "pending"), ("site-b", "pending")]


def test_parallel_stores_of_one_object_leave_one_file(archive: Archive, tmp_path: Path) -> None:
    data = _files()[0]
    results = []
    threads = [threading.Thread(target=lambda: results.append(archive.store(data, "T"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status.value for r in results)
    assert statuses == ["duplicate"] * 7 + ["stored"]
    assert len(stored_files(tmp_path / "store")) == 1
    assert archive.index.counts()["instances"] == 1
    assert list((tmp_path / "store" / "tmp").iterdir()) == []


def _two_group_lengths(data: bytes) -> bytes:
    """(0002,0000) written with two values (VM 2), as a fuzzer found: refused, not a crash."""
    tag, value = data[132:136], data[140:144]
    assert tag == b"\x02\x00\x00\x00" and data[136:138] == b"UL"
    return data[:132] + tag + b"UL" + (8).to_bytes(2, "little") + value + value + data[144:]

