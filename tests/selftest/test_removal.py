"""Removal of self-test studies in the core and the index, on each index backend."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import func, select

from twinpacs.core.archive import Archive
from twinpacs.core.model import Level
from twinpacs.core.query import build_query
from twinpacs.index.removal import NotSelfTestObject
from twinpacs.index.schema import changes, instance_versions, outbox, patients
from twinpacs.selftest import MarkedObject, marked_study
from twinpacs.errors import NotFound
from twinpacs.synthetic import encode
from tests.conftest import stored_files


def study_of(objects: list[MarkedObject]) -> str:
    return str(pydicom.dcmread(io.BytesIO(objects[0].data)).StudyInstanceUID)


def other_version(data: bytes) -> bytes:
    """Same SOP Instance UID, other content (a conflict the archive keeps as a version)."""
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.SeriesDescription = "corrected"
    return encode(ds)


def rows(archive: Archive, table: object, *where: object) -> int:
    with archive.index.db.read() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def test_removal_takes_every_row_and_file_of_the_study_and_keeps_the_rest(archive: Archive, tmp_path: Path) -> None:
    archive.peers = ["B"]  # each store queues an outbox row, which the removal must take too
    first, second = marked_study(seed=1), marked_study(seed=2)
    for o in first + second:
        archive.store(o.data, "TEST")
    archive.store(other_version(first[0].data), "TEST")  # a conflicting version, kept
    assert len(archive.conflicts()) == 1

    removed = archive.remove_selftest_study(study_of(first))

    assert removed == {"study": study_of(first), "instances": 4, "series": 2, "versions": 1,
                       "patient_removed": False, "files_deleted": 5}
    assert {p.name for p in stored_files(tmp_path / "store")} == {o.content_hash for o in second}
    assert archive.conflicts() == [] and rows(archive, instance_versions) == 0
    assert archive.index.counts() == {"patients": 1, "studies": 1, "series": 2, "instances": 4}
    assert rows(archive, outbox) == 4 and rows(archive, changes, changes.c.kind == "removed") == 4
    with archive.index.db.read() as conn:  # type: ignore[attr-defined]
        counters = conn.execute(select(patients.c.num_studies, patients.c.num_series, patients.c.num_instances)).one()
    assert tuple(counters) == (1, 2, 4)
    found = archive.find(build_query(Level.STUDY, {"PatientID": "TWINPACS-SELFTEST"}, ("StudyInstanceUID",)))
    assert [r["StudyInstanceUID"] for r in found] == [study_of(second)]

    archive.remove_selftest_study(study_of(second))
    assert archive.index.counts() == {"patients": 0, "studies": 0, "series": 0, "instances": 0}
    assert stored_files(tmp_path / "store") == [] and rows(archive, outbox) == 0


def test_removal_of_an_unknown_or_unmarked_study_removes_nothing(archive: Archive) -> None:
    with pytest.raises(NotFound):
        archive.remove_selftest_study("1.2.3.4")
    marked = marked_study(seed=5)
    ds = pydicom.dcmread(io.BytesIO(marked[0].data))
    ds.PatientID, ds.SOPInstanceUID = "REAL", "1.2.3.4.5.6"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for data in [o.data for o in marked] + [encode(ds)]:
        archive.store(data, "TEST")
    before = archive.index.counts()
    with pytest.raises(NotSelfTestObject, match="not marked; nothing removed"):
        archive.remove_selftest_study(study_of(marked))
    assert archive.index.counts() == before
