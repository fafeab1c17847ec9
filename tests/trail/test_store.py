"""The trail in the index, on each backend: entries round-trip, the background writer commits
within its interval and at close, filters, and the table refuses UPDATE and DELETE."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DatabaseError

from twinpacs.core.access_trail import AccessEntry, TrailFilter, trail_filter
from twinpacs.core.principal import Principal
from twinpacs.errors import InvalidInput, TwinpacsError
from twinpacs.index import access_trail as module
from twinpacs.index.access_trail import FLUSH_INTERVAL_S, SqlAccessTrail
from twinpacs.index.schema import access_trail, metadata
from twinpacs.index.sql import SqlIndex
from twinpacs.index.transfer import check_target

ALICE = Principal("alice", "radiologist", "user", "10.0.0.7")
BOB = Principal("bob", "radiographer", "user", "10.0.0.8")
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def committed(index: SqlIndex) -> int:
    with index.db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(access_trail)).scalar_one())


def test_an_entry_round_trips_with_who_where_what_when(index: SqlIndex) -> None:
    trail = SqlAccessTrail(index.db, "A", Clock())
    entry = AccessEntry(ALICE, "retrieve", "success", "http", "PID1", "1.2.3", "GET /dicom-web/studies/1.2.3")
    trail.record(entry)
    (found,) = trail.entries()
    assert found.entry == entry and found.at == T0 and found.site == "A" and found.id > 0
    assert found.as_dict()["principal"] == "alice" and found.as_dict()["address"] == "10.0.0.7"
    trail.close()


def test_the_writer_commits_within_its_interval_and_close_commits_the_rest(index: SqlIndex) -> None:
    trail = SqlAccessTrail(index.db, "A", Clock())
    trail.record(AccessEntry(ALICE, "query", "success", "http"))
    deadline = time.monotonic() + 20 * FLUSH_INTERVAL_S
    while committed(index) == 0:  # the background thread, not a reader's flush
        assert time.monotonic() < deadline, "the background writer did not commit"
        time.sleep(0.01)
    for _ in range(50):
        trail.record(AccessEntry(BOB, "view", "success", "http"))
    trail.close()
    assert committed(index) == 51
    trail.record(AccessEntry(BOB, "logout", "success", "http"))  # after close: written at once
    assert committed(index) == 52


def test_record_now_commits_before_returning(index: SqlIndex) -> None:
    trail = SqlAccessTrail(index.db, "A", Clock())
    trail.record_now(AccessEntry(ALICE, "failover", "success", "cli", detail="to B"))
    assert committed(index) == 1
    trail.close()


def test_a_write_that_fails_never_raises_and_is_retried(tmp_path: Path) -> None:
    index = SqlIndex(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    try:
        trail = SqlAccessTrail(index.db, "A", Clock())
        with index.db.writer.begin() as conn:  # the table gone: every write fails
            conn.execute(sa.text("ALTER TABLE access_trail RENAME TO access_trail_away"))
        trail.record_now(AccessEntry(ALICE, "merge", "success", "hl7"))  # logged, not raised: kept queued
        trail.record(AccessEntry(ALICE, "query", "success", "http"))
        trail.flush()  # fails again: both stay queued
        with index.db.writer.begin() as conn:
            conn.execute(sa.text("ALTER TABLE access_trail_away RENAME TO access_trail"))
        trail.close()
        assert [r.entry.action for r in trail.entries()] == ["query", "merge"]
    finally:
        index.close()


def test_filters(index: SqlIndex) -> None:
    clock = Clock()
    trail = SqlAccessTrail(index.db, "A", clock)
    for minutes, principal, action, patient, study in [
        (0, ALICE, "query", "", ""), (10, ALICE, "view", "PID1", "1.1"), (20, BOB, "retrieve", "PID1", "1.1"),
        (30, BOB, "view", "PID2", "2.2"), (40, ALICE, "export", "PID2", "2.2"),
    ]:
        clock.now = T0 + timedelta(minutes=minutes)
        trail.record(AccessEntry(principal, action, "success", "http", patient, study))  # type: ignore[arg-type]

    def actions(**wanted: object) -> list[str]:
        return [r.entry.action for r in trail.entries(TrailFilter(**wanted))]  # type: ignore[arg-type]
    assert actions() == ["export", "view", "retrieve", "view", "query"]  # newest first
    assert actions(patient_id="PID1") == ["retrieve", "view"]
    assert actions(study_uid="2.2") == ["export", "view"]
    assert actions(who="bob") == ["view", "retrieve"]
    assert actions(action="view") == ["view", "view"]
    assert actions(since=T0 + timedelta(minutes=10), until=T0 + timedelta(minutes=30)) == ["view", "retrieve", "view"]
    assert actions(limit=2) == ["export", "view"]
    trail.close()


def test_the_filter_from_typed_text() -> None:
    wanted = trail_filter(since="2026-12-01", until="2026-12-01T09:00:00+01:00", action="view", limit="5")
    assert wanted.since == T0.replace(hour=0) and wanted.until == datetime(2026, 12, 1, 8, tzinfo=timezone.utc)
    for bad in ({"since": "yesterday"}, {"action": "peek"}, {"limit": "0"}, {"limit": "x"}):
        with pytest.raises(InvalidInput):
            trail_filter(**bad)  # type: ignore[arg-type]


def test_update_and_delete_through_sql_fail(index: SqlIndex) -> None:
    trail = SqlAccessTrail(index.db, "A", Clock())
    trail.record_now(AccessEntry(ALICE, "view", "success", "http", "PID1", "1.1"))
    for statement in ("UPDATE access_trail SET principal_name = 'mallory'", "DELETE FROM access_trail"):
        with pytest.raises(DatabaseError, match="append-only"):
            with index.db.writer.begin() as conn:
                conn.execute(sa.text(statement))
    (kept,) = trail.entries()
    assert kept.entry.principal == ALICE
    trail.close()


def test_a_schema_made_from_the_metadata_refuses_them_too(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'made.sqlite3'}")
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(access_trail).values(
                at=T0, site="A", action="view", outcome="success", door="http", principal_name="a",
                principal_role="r", principal_kind="user"))
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM access_trail"))
    finally:
        engine.dispose()


def test_the_module_has_no_update_or_delete_path() -> None:
    source = Path(module.__file__).read_text().lower()
    code = source.split('"""', 2)[2]  # past the docstring, which says it must not
    assert "update(" not in code and "delete(" not in code and "update " not in code.replace("# ", "")


def test_migrate_force_refuses_to_erase_a_target_holding_a_trail(index: SqlIndex) -> None:
    SqlAccessTrail(index.db, "A", Clock()).record_now(AccessEntry(ALICE, "view", "success", "http"))
    with pytest.raises(TwinpacsError, match="never deletes"):
        check_target(index.db, "elsewhere", force=True)
    assert committed(index) == 1
