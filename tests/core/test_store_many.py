"""Storing a batch (a STOW-RS request) on every index backend: one result per object in order,
one index transaction, files written in parallel and all durable, a bad object failing alone,
and a batch the index cannot commit as one stored object by object."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from tests.conftest import stored_files
from twinpacs.core.archive import Archive, StoreResult, StoreStatus, StudyMismatch
from twinpacs.errors import NotDicom
from twinpacs.storage.filesystem import FilesystemBlobStore
from twinpacs.synthetic import StudySpec, encode, make_study

SPEC = StudySpec(series=2, instances_per_series=4, rows=16, columns=16)


def _files(spec: StudySpec = SPEC) -> list[bytes]:
    return [encode(ds) for ds in make_study(spec)]


def _commits(archive: Archive) -> list[int]:
    """A counter of the index's commits from now on."""
    counted = [0]
    event.listen(archive.index.db.writer, "commit", lambda conn: counted.__setitem__(0, counted[0] + 1))
    return counted


def test_a_batch_is_one_commit_with_a_result_per_object_in_order(archive: Archive, tmp_path: Path) -> None:
    datas = _files()
    commits = _commits(archive)
    results = archive.store_many([*datas, datas[0]], "TEST")  # the first again, in the same request
    assert commits == [1]
    assert all(isinstance(r, StoreResult) for r in results)
    stored = [r for r in results if isinstance(r, StoreResult)]
    assert [r.status for r in stored] == [StoreStatus.STORED] * 8 + [StoreStatus.DUPLICATE]
    assert [r.bytes_written for r in stored] == [len(d) for d in datas] + [0]
    study = make_study(SPEC)[0].StudyInstanceUID
    assert {r.study_uid for r in stored} == {study} and len({r.series_uid for r in stored}) == 2
    assert archive.index.counts()["instances"] == 8
    assert len(stored_files(tmp_path / "store")) == 8 and list((tmp_path / "store" / "tmp").iterdir()) == []
    assert [archive.read(i) for i in archive.instances(study=study)] == datas


def test_a_bad_object_or_one_of_another_study_fails_alone(archive: Archive) -> None:
    datas = _files()
    other = _files(StudySpec(patient_id="OTHER", instances_per_series=1, rows=16, columns=16, seed=9))[0]
    target = make_study(SPEC)[0].StudyInstanceUID
    results = archive.store_many([datas[0], b"not dicom", other, datas[1][:-40], datas[2]], "TEST", study=target)
    assert isinstance(results[1], NotDicom) and isinstance(results[3], NotDicom)
    assert isinstance(results[2], StudyMismatch) and target in results[2].message
    assert [isinstance(results[n], StoreResult) for n in (0, 4)] == [True, True]
    assert archive.index.counts()["instances"] == 2


def test_a_batch_the_index_refuses_is_stored_object_by_object(archive: Archive, monkeypatch: pytest.MonkeyPatch) -> None:
    datas = _files()[:4]
    real_write = archive.index.write
    calls: list[int] = []

    def write_refusing_batches(work: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the batch's transaction failed")
        return real_write(work)

    monkeypatch.setattr(archive.index, "write", write_refusing_batches)
    results = archive.store_many(datas, "TEST")
    assert [r.status for r in results if isinstance(r, StoreResult)] == [StoreStatus.STORED] * 4
    assert len(calls) == 5 and archive.index.counts()["instances"] == 4


def test_a_failed_file_write_leaves_nothing_half_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blobs = FilesystemBlobStore(tmp_path / "store")
    items = [(f"{n:02d}" + "a" * 62, bytes([n]) * 1000) for n in range(12)]
    real_fsync = os.fsync
    seen = [0]

    def fsync_failing_once(fd: int) -> None:
        seen[0] += 1
        if seen[0] == 5:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_failing_once)
    with pytest.raises(OSError, match="No space left"):
        blobs.put_many(items)
    assert stored_files(tmp_path / "store") == [] and list((tmp_path / "store" / "tmp").iterdir()) == []
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert blobs.put_many(items) == [1000] * 12 and blobs.put_many(items) == [0] * 12
    assert all(blobs.get(key) == data for key, data in items)
