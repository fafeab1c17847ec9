"""The index write of a store (issue 4): its statements run on the DBAPI cursor (index/prepared.py)
and SQLite keeps one writer connection, with the behaviour of SQLAlchemy's own execution."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from twinpacs.core.model import InstanceRecord
from twinpacs.index.database import Database
from twinpacs.index.schema import changes, counters, outbox
from twinpacs.index.sql import SqlIndex
from twinpacs.index.transaction import IndexTransaction

AT = datetime(2026, 12, 4, 20, 15, 45, 123456, tzinfo=timezone.utc)
RECORD = InstanceRecord(
    attributes={"SOPInstanceUID": "1.2.826.0.1.3680043.8.498.1.1", "StudyInstanceUID": "1.2.826.0.1.3680043.8.498.1",
                "AccessionNumber": ""},
    transfer_syntax="1.2.840.10008.1.2.1", content_hash="ab" * 32, size=10,
)


def test_a_failing_statement_makes_the_write_run_again_from_the_start(index: SqlIndex) -> None:
    attempts = []

    def work(tx: IndexTransaction) -> int:
        attempts.append(tx)
        seq = tx.log_change("stored", RECORD, AT)
        # The first attempt queues for a change that does not exist: a foreign key violation.
        tx.enqueue(seq + 1000 if len(attempts) == 1 else seq, ["B"], RECORD, AT)
        return seq

    seq = index.write(work)
    assert len(attempts) == 2  # the DBAPI's IntegrityError came as SQLAlchemy's: retried
    with index.db.read() as conn:
        assert conn.execute(select(changes.c.seq)).scalars().all() == [seq]  # the first attempt rolled back
        assert conn.execute(select(outbox.c.change_seq, outbox.c.peer)).all() == [(seq, "B")]


def test_prepared_and_core_statements_store_the_same_values(index: SqlIndex) -> None:
    def work(tx: IndexTransaction) -> None:
        tx.log_change("stored", RECORD, AT)  # prepared
        tx.add_version(RECORD.sop_instance_uid, {"content_hash": RECORD.content_hash, "size": 10, "received_at": AT,
                                                 "transfer_syntax": RECORD.transfer_syntax, "source": ""}, "open")
    index.write(work)
    with index.db.read() as conn:
        raw = conn.exec_driver_sql("SELECT c.at, v.received_at FROM changes c, instance_versions v").one()
    assert raw[0] == raw[1]  # SQLite: the same text; PostgreSQL: the same instant


def test_the_sqlite_writer_connection_outlives_a_failed_begin(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    db = Database(f"sqlite:///{path}")
    try:
        db.write(lambda conn: conn.exec_driver_sql("PRAGMA busy_timeout=50"))  # the writer's, not 30 s
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError):  # database is locked
            db.write(lambda conn: None, attempts=1)
        other.execute("ROLLBACK")
        other.close()

        def add(conn: Connection) -> None:
            conn.execute(insert(counters).values(name="n", value=1))
        db.write(add)
        with db.read() as conn:
            assert conn.execute(select(counters.c.value)).scalar_one() == 1
    finally:
        db.dispose()
