"""`twinpacs migrate`: copy the index to another database (SQLite <-> PostgreSQL) and prove it.

Every table of the schema is copied in foreign-key order, keyset-paginated on its primary key
in the source's order. Each batch is inserted together with its `migration_progress` row in
one target transaction, so an interruption at any moment leaves the target at a batch
boundary, and a rerun resumes there: nothing is copied twice, nothing skipped. Success is
only reported after every table's row count and row digest, and a digest of every instance's
(SOPInstanceUID, content_hash), are equal on both sides."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Integer, Table, delete, func, insert, select, text, tuple_, update
from sqlalchemy.engine import Connection, make_url

from ..errors import ConfigurationError, TwinpacsError
from .database import Database
from .migrate import analyze, masked_url, refusal, schema_state, upgrade
from .schema import access_trail, instances, metadata, migration_progress

# (table, rows copied so far, rows in the source) after each batch.
ProgressFn = Callable[[str, int, int], None]
_MOD = 2**256


class Interrupted(TwinpacsError):
    """Raised by the `stop_after_batches` test hook, as a crash would stop the copy."""


def copied_tables() -> list[Table]:
    """Every table of the schema, parents before children; the progress table is the target's own."""
    return [t for t in metadata.sorted_tables if t is not migration_progress]


def source_identity(url: str) -> str:
    """How the progress table names a source: SQLite paths absolute, passwords hidden."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        parsed = parsed.set(database=str(Path(parsed.database).resolve()))
    return masked_url(parsed.render_as_string(hide_password=False))


# ---------------------------------------------------------------- opening both sides


def open_source(url: str) -> Database:
    """The source must exist and be at the schema this version knows: it is never created."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        raise ConfigurationError(f"the source index {parsed.database} does not exist")
    db = Database(url, check_schema=False)
    with db.reader.connect() as conn:
        state = schema_state(conn)
    if state.empty:
        db.dispose()
        raise ConfigurationError(f"the source database {masked_url(url)} holds no twinpacs index")
    if not state.at_head:
        db.dispose()
        raise ConfigurationError(refusal(state, url))
    return db


def open_target(url: str) -> tuple[Database, str | None]:
    """The target, created or upgraded to head; returns it and the revision it was at."""
    db = Database(url, check_schema=False)
    try:
        before, _ = upgrade(db.writer)
    except BaseException:
        db.dispose()
        raise
    return db, before


# ---------------------------------------------------------------- normalising values


def _utc(value: datetime) -> datetime:
    # The archive writes UTC; SQLite keeps no offset, so a naive value is UTC.
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _portable(value: Any) -> Any:
    """A value as the target should receive it: datetimes as aware UTC (PostgreSQL would read a
    naive one in its session time zone; SQLite drops the offset without converting)."""
    return _utc(value) if isinstance(value, datetime) else value


def _canonical(value: Any) -> Any:
    """The same value read from SQLite or PostgreSQL gives the same digest input."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return _utc(value).isoformat(timespec="microseconds")
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    return value


def row_digest(row: dict[str, Any]) -> int:
    encoded = json.dumps({k: _canonical(v) for k, v in row.items()}, sort_keys=True, default=str)
    return int.from_bytes(hashlib.sha256(encoded.encode()).digest(), "big")


# ---------------------------------------------------------------- copying


@dataclass
class TableCopy:
    table: str
    copied: int  # rows in the target after the copy
    this_run: int  # rows this run added (0: the table was already done)


@dataclass
class CopyResult:
    tables: list[TableCopy] = field(default_factory=list)
    seconds: float = 0.0
    target_was_at: str | None = None

    @property
    def rows_this_run(self) -> int:
        return sum(t.this_run for t in self.tables)


def count_rows(db: Database) -> dict[str, int]:
    with db.reader.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in copied_tables()}


def _progress_rows(conn: Connection) -> dict[str, dict[str, Any]]:
    return {r.table_name: dict(r._mapping) for r in conn.execute(select(migration_progress))}


def check_target(target: Database, source_id: str, force: bool) -> None:
    """Refuse a target holding data that this migration did not put there. `force` empties
    the target's twinpacs tables first, whatever they hold: the copy starts again."""
    with target.writer.connect() as conn:
        progress = _progress_rows(conn)
        others = {r["source"] for r in progress.values() if r["source"] != source_id}
        occupied = [t.name for t in copied_tables()
                    if conn.execute(select(t).limit(1)).first() is not None]
        conn.rollback()
    if force:
        if access_trail.name in occupied:  # append-only (issue 9): no path of twinpacs erases it
            raise TwinpacsError(f"refusing to erase {masked_url(str(target.url))}: its access trail holds entries, "
                                "which twinpacs never deletes. Choose an empty database")
        if occupied or progress:
            with target.writer.begin() as conn:
                for table in reversed(metadata.sorted_tables):
                    conn.execute(delete(table))
        return
    if others:
        problem = f"it holds a migration from another source ({', '.join(sorted(others))})"
    elif occupied and not progress:
        problem = f"it already holds data (tables {', '.join(occupied)})"
    else:
        return
    raise TwinpacsError(f"refusing to copy into {masked_url(str(target.url))}: {problem}. "
                        "Choose an empty database, or add --force to erase its twinpacs tables first")


def copy_index(source: Database, target: Database, batch_size: int = 1000,
               progress: ProgressFn | None = None, stop_after_batches: int | None = None) -> CopyResult:
    """Copy every table, resuming from the target's progress rows. `stop_after_batches` is a
    test hook: raise Interrupted after that many committed batches, as a crash would."""
    if batch_size < 1:
        raise ConfigurationError("--batch-size must be at least 1")
    source_id = source_identity(str(source.url))
    result, started, batches = CopyResult(), time.monotonic(), 0
    totals = count_rows(source)
    with target.writer.connect() as conn:
        done = _progress_rows(conn)
        conn.rollback()
    for table in copied_tables():
        state = done.get(table.name, {"last_key": "", "copied": 0, "done": 0})
        copied, added = int(state["copied"]), 0
        last_key = json.loads(state["last_key"]) if state["last_key"] else None
        if progress:
            progress(table.name, copied, totals[table.name])
        while not state["done"]:
            rows = _next_batch(source, table, last_key, batch_size)
            last_key = _key(table, rows[-1]) if rows else last_key
            copied += len(rows)
            added += len(rows)
            _commit_batch(target, table, rows, last_key, copied, not rows, source_id)
            if not rows:
                break
            batches += 1
            if progress:
                progress(table.name, copied, max(totals[table.name], copied))
            if stop_after_batches is not None and batches >= stop_after_batches:
                raise Interrupted(f"stopped after {batches} batch(es) (test hook)")
        result.tables.append(TableCopy(table.name, copied, added))
    finish_target(target)
    result.seconds = time.monotonic() - started
    return result


def _key(table: Table, row: dict[str, Any]) -> list[Any]:
    return [row[c.name] for c in table.primary_key.columns]


def _next_batch(source: Database, table: Table, last_key: list[Any] | None, size: int) -> list[dict[str, Any]]:
    pk = list(table.primary_key.columns)
    statement = select(table).order_by(*pk).limit(size)
    if last_key is not None:
        # Compared by the source, in the source's own order (its collation for text keys).
        statement = statement.where(pk[0] > last_key[0] if len(pk) == 1 else tuple_(*pk) > tuple_(*last_key))
    with source.read() as conn:
        return [dict(r._mapping) for r in conn.execute(statement)]


def _commit_batch(target: Database, table: Table, rows: list[dict[str, Any]], last_key: list[Any] | None,
                  copied: int, finished: bool, source_id: str) -> None:
    """The rows and the progress that records them: both or neither."""
    values = {"last_key": json.dumps(last_key, default=str) if last_key is not None else "",
              "copied": copied, "done": int(finished), "source": source_id}

    def work(conn: Connection) -> None:
        if rows:
            conn.execute(insert(table), [{k: _portable(v) for k, v in row.items()} for row in rows])
        where = migration_progress.c.table_name == table.name
        if not conn.execute(update(migration_progress).where(where).values(**values)).rowcount:
            conn.execute(insert(migration_progress).values(table_name=table.name, **values))

    target.write(work, attempts=1)


def finish_target(target: Database) -> None:
    """PostgreSQL: serial sequences past the copied ids (else the next insert collides), and
    planner statistics for the new tables. Idempotent."""
    if target.is_sqlite:
        return  # INTEGER PRIMARY KEY continues from max(rowid) by itself
    with target.writer.begin() as conn:
        for table in copied_tables():
            for column in table.primary_key.columns:
                if isinstance(column.type, Integer) and column.autoincrement in (True, "auto"):
                    conn.execute(text(
                        f'SELECT setval(pg_get_serial_sequence(:table, :column), '
                        f'COALESCE((SELECT max("{column.name}") FROM "{table.name}"), 0) + 1, false)'),
                        {"table": f'"{table.name}"', "column": column.name})
    analyze(target.writer)


# ---------------------------------------------------------------- verifying


@dataclass
class TableCheck:
    table: str
    source_rows: int
    target_rows: int
    source_digest: str
    target_digest: str

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows and self.source_digest == self.target_digest


@dataclass
class Verification:
    tables: list[TableCheck]
    instances_source: str
    instances_target: str
    instance_count: int

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables) and self.instances_source == self.instances_target

    @property
    def differing(self) -> list[str]:
        names = [t.table for t in self.tables if not t.ok]
        if self.instances_source != self.instances_target:
            names.append("instances (SOPInstanceUID, content_hash)")
        return names


def _stream(db: Database, statement: Any) -> Iterator[dict[str, Any]]:
    with db.reader.connect() as conn:
        result = conn.execution_options(yield_per=5000).execute(statement)
        for row in result:
            yield dict(row._mapping)
        conn.rollback()


def table_digest(db: Database, table: Table) -> tuple[int, str]:
    """(row count, order-independent digest): a sum of per-row SHA-256, so duplicates count."""
    count, total = 0, 0
    for row in _stream(db, select(table)):
        count, total = count + 1, (total + row_digest(row)) % _MOD
    return count, f"{total:064x}"


def instance_digest(db: Database) -> tuple[int, str]:
    count, total = 0, 0
    statement = select(instances.c.SOPInstanceUID, instances.c.content_hash)
    for row in _stream(db, statement):
        count, total = count + 1, (total + row_digest(row)) % _MOD
    return count, f"{total:064x}"


def verify(source: Database, target: Database, progress: ProgressFn | None = None) -> Verification:
    checks = []
    tables = copied_tables()
    for position, table in enumerate(tables):
        source_rows, source_digest = table_digest(source, table)
        target_rows, target_digest = table_digest(target, table)
        checks.append(TableCheck(table.name, source_rows, target_rows, source_digest, target_digest))
        if progress:
            progress("verify", position + 1, len(tables))
    count, source_instances = instance_digest(source)
    _, target_instances = instance_digest(target)
    return Verification(checks, source_instances, target_instances, count)


# ---------------------------------------------------------------- dry run


@dataclass
class Estimate:
    rows: dict[str, int]
    seconds: float  # copy and verification, from a timed sample read of the source

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def estimate(source: Database, batch_size: int = 1000) -> Estimate:
    rows = count_rows(source)
    started = time.monotonic()
    sample = len(_next_batch(source, instances, None, batch_size))
    per_row = (time.monotonic() - started) / sample if sample else 0.0
    # A row is read twice (copy, verify), written once and read back once: ~4 reads' worth,
    # with a floor for the per-batch transaction of the target.
    per_row = max(per_row * 4, 1e-4)
    return Estimate(rows, sum(rows.values()) * per_row)
