"""Searches (C-FIND, QIDO-RS) run prepared on the DBAPI cursor, and on SQLite in reader
connections kept between searches (issue 4): the rows SQLAlchemy's own execution gives, and
every search sees what was committed before it began."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import text

from twinpacs.core.archive import Archive
from twinpacs.core.model import Level
from twinpacs.core.query import build_query
from twinpacs.index.database import KEPT_READERS
from twinpacs.index.queries import run_query, select_matches
from twinpacs.index.sql import SqlIndex
from twinpacs.synthetic import StudySpec, encode, make_studies, make_study

STUDY_KEYS = ("StudyInstanceUID", "PatientID", "PatientName", "StudyDate", "AccessionNumber", "ModalitiesInStudy",
              "SOPClassesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances")
QUERY = build_query(Level.STUDY, {"PatientID": "SEARCH*", "StudyInstanceUID": ""}, ("StudyInstanceUID",))


def _sqlite_only(index: SqlIndex) -> None:
    if not index.db.is_sqlite:
        pytest.skip("SQLite's kept reader connections and snapshot isolation")


def _store(archive: Archive, studies: int, prefix: str = "SEARCH") -> None:
    for spec in make_studies(studies, StudySpec(series=2, instances_per_series=2, rows=8, columns=8,
                                                patient_id=prefix)):
        for ds in make_study(spec):
            archive.store(encode(ds), source="test")


@pytest.mark.parametrize(("level", "criteria", "keys", "limit", "offset"), [
    (Level.STUDY, {"PatientID": "SEARCH-00001"}, STUDY_KEYS, None, 0),
    (Level.STUDY, {"PatientName": "*"}, STUDY_KEYS, 2, 1),
    (Level.STUDY, {"StudyDate": "19000101-"}, ("StudyInstanceUID", "StudyDate"), None, 0),
    (Level.SERIES, {"Modality": "CT"}, ("SeriesInstanceUID", "NumberOfSeriesRelatedInstances"), None, 0),
    (Level.PATIENT, {"PatientID": "SEARCH-*"}, ("PatientID", "NumberOfPatientRelatedStudies"), None, 0),
])
def test_the_rows_are_sqlalchemys(archive: Archive, index: SqlIndex, level: Level, criteria: dict[str, str],
                                  keys: tuple[str, ...], limit: int | None, offset: int) -> None:
    _store(archive, 3)
    query = build_query(level, {**criteria, **{k: "" for k in keys if k not in criteria}}, keys, limit, offset)
    found = index.query(query)
    with index.db.read() as conn:
        expected = [{k: "" if v is None else str(v) for k, v in row._mapping.items() if k != "_pk"}
                    for row in conn.execute(select_matches(query))]
        assert run_query(conn, query) == found  # the same on a SQLAlchemy transaction
    computed = {"ModalitiesInStudy", "SOPClassesInStudy"}
    assert [{k: v for k, v in row.items() if k not in computed} for row in found] == expected
    assert found and all(set(keys) <= set(row) for row in found)
    if "ModalitiesInStudy" in keys:
        assert {row["ModalitiesInStudy"] for row in found} == {"CT"}


def test_each_search_sees_what_was_committed_before_it(archive: Archive, index: SqlIndex) -> None:
    _store(archive, 1)
    assert len(index.query(QUERY)) == 1
    _store(archive, 2, "SEARCHED")
    assert len(index.query(QUERY)) == 3  # a kept connection holds no earlier view


def test_a_search_holds_one_view_and_does_not_hold_back_a_store(archive: Archive, index: SqlIndex) -> None:
    _sqlite_only(index)
    _store(archive, 1)
    with index.db.snapshot() as conn:
        assert len(run_query(conn, QUERY)) == 1
        _store(archive, 2, "SEARCHED")  # committed while the search's transaction is open (G3)
        assert len(run_query(conn, QUERY)) == 1
    assert len(index.query(QUERY)) == 3


def test_a_failed_search_leaves_its_connection_usable(archive: Archive, index: SqlIndex) -> None:
    _sqlite_only(index)
    _store(archive, 1)
    with pytest.raises(Exception, match="no such table"):
        with index.db.snapshot() as conn:
            conn.connection.cursor().execute("SELECT * FROM no_such_table")
    assert len(index.db._readers) == 1
    assert len(index.query(QUERY)) == 1
    assert len(index.db._readers) == 1  # the same connection again


def test_at_most_a_few_idle_readers_are_kept(index: SqlIndex) -> None:
    _sqlite_only(index)
    with ExitStack() as stack:
        conns = [stack.enter_context(index.db.snapshot()) for _ in range(KEPT_READERS + 3)]
        assert len({id(c) for c in conns}) == KEPT_READERS + 3
        assert all(c.connection.cursor().execute(text("SELECT 1").text).fetchone() == (1,) for c in conns)
    assert len(index.db._readers) == KEPT_READERS
    index.close()
    assert index.db._readers == []


def test_the_readers_are_closed_with_the_index(tmp_path: Path) -> None:
    index = SqlIndex(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    index.query(build_query(Level.STUDY, {"PatientID": "X"}, ("PatientID",)))
    index.close()
    assert index.db._readers == []
