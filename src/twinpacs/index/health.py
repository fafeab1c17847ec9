"""Database checks for `twinpacs db check` and `config check`: engine and version, the schema
revision, SQLite durability settings, the declared indexes present, the hot-path queries able
to use them (EXPLAIN), and planner statistics on PostgreSQL. Read-only: nothing is created."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Select, inspect, or_, select, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError

from ..core.model import Level
from ..core.query import build_query
from ..core.replication import PENDING
from ..errors import TwinpacsError
from .database import Database
from .migrate import masked_url, schema_state
from .queries import select_matches
from .schema import metadata, outbox

Level_ = Literal["ok", "warning", "error"]

# Tables whose full scan on a hot path is an error (they grow with every object); others warn.
_BIG = {"instances", "studies"}
# Tables worth planner statistics once they hold rows.
_STATS_TABLES = ("patients", "studies", "series", "instances", "outbox", "changes", "instance_versions")
# Probe values that match (almost) nothing: the question is whether a *selective* query, as
# the hot paths are, can use an index, not how a query matching every row is best run.
_UID = "1.2.3.4"
_VALUE = "~probe~"


@dataclass(frozen=True)
class Finding:
    level: Level_
    check: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def check_database(url: str) -> list[Finding]:
    """Every check on the database at `url`; a database that cannot be opened is one error."""
    try:
        new = _not_created(url)
        if new:
            return [new]
        db = Database(url, check_schema=False)
    except (SQLAlchemyError, TwinpacsError) as exc:
        return [Finding("error", "connection", f"cannot use {masked_url(url)}: {exc}")]
    try:
        with db.reader.connect() as conn:
            findings = [_engine(conn)]
            state = schema_state(conn)
            if state.empty:
                return findings + [Finding("ok", "schema", "empty database: created at first start")]
            findings.append(_revision(state.current, state.head))
            if db.is_sqlite:
                findings += _sqlite_settings(conn)
            findings += _indexes(conn)
            if not any(f.level == "error" and f.check == "tables" for f in findings):
                findings += _plans(conn)
                if not db.is_sqlite:
                    findings += _statistics(conn)
            return findings
    except SQLAlchemyError as exc:
        return [Finding("error", "connection", f"cannot use {masked_url(url)}: {getattr(exc, 'orig', exc)}")]
    finally:
        db.dispose()


def has_errors(findings: list[Finding]) -> bool:
    return any(f.level == "error" for f in findings)


def findings_json(findings: list[Finding]) -> str:
    return json.dumps([f.as_dict() for f in findings])


def _not_created(url: str) -> Finding | None:
    """A SQLite file that does not exist yet is created at first start; do not create it here."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if not Path(parsed.database).exists():
            return Finding("ok", "schema", f"{parsed.database} does not exist yet: created at first start")
    return None


def _engine(conn: Connection) -> Finding:
    if conn.dialect.name == "sqlite":
        version = conn.exec_driver_sql("SELECT sqlite_version()").scalar_one()
        return Finding("ok", "engine", f"SQLite {version}")
    version = conn.exec_driver_sql("SHOW server_version").scalar_one()
    return Finding("ok", "engine", f"PostgreSQL {version}")


def _revision(current: str | None, head: str) -> Finding:
    if current == head:
        return Finding("ok", "schema", f"revision {current} (head)")
    return Finding("error", "schema", f"revision {current or 'none'}, expected {head}: run twinpacs db upgrade")


def _sqlite_settings(conn: Connection) -> list[Finding]:
    journal = str(conn.exec_driver_sql("PRAGMA journal_mode").scalar_one()).lower()
    sync = int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())
    return [
        Finding("ok" if journal == "wal" else "error", "journal_mode",
                f"{journal} (WAL expected: readers never wait for the writer)"),
        Finding("ok" if sync >= 2 else "error", "synchronous",
                f"{ {0: 'OFF', 1: 'NORMAL', 2: 'FULL', 3: 'EXTRA'}.get(sync, sync)} (FULL expected: "
                "a committed store survives power loss)"),
    ]


def _expected_indexes() -> Iterator[tuple[str, str, tuple[str, ...], str | None]]:
    """(table, description, columns, name): named indexes by name, unique keys by columns."""
    for table in metadata.sorted_tables:
        for index in table.indexes:
            yield table.name, str(index.name), tuple(c.name for c in index.columns), str(index.name)
        for constraint in table.constraints:
            columns = tuple(c.name for c in getattr(constraint, "columns", ()))
            if constraint.__class__.__name__ == "UniqueConstraint":
                yield table.name, str(constraint.name or f"unique({', '.join(columns)})"), columns, None
        for column in table.columns:
            if column.unique:
                yield table.name, f"unique({column.name})", (column.name,), None


def _indexes(conn: Connection) -> list[Finding]:
    inspector = inspect(conn)
    present_tables = set(inspector.get_table_names())
    missing_tables = [t.name for t in metadata.sorted_tables if t.name not in present_tables]
    if missing_tables:
        return [Finding("error", "tables", f"missing: {', '.join(missing_tables)}")]
    findings, checked = [], 0
    for table, label, columns, name in _expected_indexes():
        found = inspector.get_indexes(table) + inspector.get_unique_constraints(table)  # type: ignore[operator]
        if name is not None:
            ok = any(i["name"] == name and tuple(i["column_names"]) == columns for i in found)
        else:
            ok = any(tuple(i["column_names"]) == columns for i in found)
        checked += 1
        if not ok:
            findings.append(Finding("error", "index", f"{label} on {table}({', '.join(columns)}) is missing"))
    if not findings:
        findings.append(Finding("ok", "index", f"all {checked} declared indexes present"))
    return findings


def _hot_paths() -> dict[str, Select[Any]]:
    """The statements the doors run most, built by the same code that runs them."""
    now = datetime.now(timezone.utc)
    return {
        "study by PatientID": select_matches(build_query(Level.STUDY, {"PatientID": _VALUE})),
        "study by AccessionNumber": select_matches(build_query(Level.STUDY, {"AccessionNumber": _VALUE})),
        "study by date range": select_matches(build_query(Level.STUDY, {"StudyDate": "18000101-18000107"})),
        "series of a study": select_matches(build_query(Level.SERIES, {"StudyInstanceUID": _UID})),
        "instances of a study": select_matches(build_query(Level.IMAGE, {"StudyInstanceUID": _UID})),
        "instance by SOPInstanceUID": select_matches(build_query(Level.IMAGE, {"SOPInstanceUID": _UID})),
        "outbox due rows per peer": select(outbox.c.id).where(
            outbox.c.peer == _VALUE, outbox.c.state == PENDING,
            or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= now),
        ).order_by(outbox.c.id).limit(20),
    }


def _plans(conn: Connection) -> list[Finding]:
    findings = []
    if conn.dialect.name == "postgresql":
        # A tiny table makes a sequential scan the cheapest plan; ask whether an index *can* serve.
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    for name, statement in _hot_paths().items():
        scanned = _full_scans(conn, statement)
        if not scanned:
            findings.append(Finding("ok", "query plan", f"{name}: uses indexes"))
            continue
        level: Level_ = "error" if scanned & _BIG else "warning"
        findings.append(Finding(level, "query plan", f"{name}: scans the whole {', '.join(sorted(scanned))} table"))
    conn.rollback()  # ends SET LOCAL
    return findings


def _full_scans(conn: Connection, statement: Select[Any]) -> set[str]:
    compiled = statement.compile(dialect=conn.dialect)
    params: Any = compiled.params
    if compiled.positional:
        params = tuple(compiled.params[k] for k in compiled.positiontup or ())
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled.string, params).all()
        # "SCAN t" is a full scan; "SCAN t USING INDEX" walks a whole index (as bad); "SEARCH" is fine.
        return {detail.split()[1] for *_, detail in rows if detail.startswith("SCAN ") and len(detail.split()) > 1}
    plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + compiled.string, params).scalar_one()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return set(_seq_scans(plan[0]["Plan"]))


def _seq_scans(node: dict[str, Any]) -> Iterator[str]:
    """Sequential scans, and index scans with no condition: they walk the whole table in
    index order (e.g. the primary key, for ORDER BY id) and filter every row."""
    kind = node.get("Node Type")
    if kind == "Seq Scan" or (kind in ("Index Scan", "Index Only Scan") and "Index Cond" not in node):
        yield str(node.get("Relation Name"))
    for child in node.get("Plans", ()):
        yield from _seq_scans(child)


def _statistics(conn: Connection) -> list[Finding]:
    stale = []
    for table in _STATS_TABLES:
        has_rows = conn.execute(text(f'SELECT EXISTS (SELECT 1 FROM "{table}")')).scalar_one()
        if not has_rows:
            continue
        analysed = conn.execute(text(
            "SELECT c.reltuples >= 0 OR s.last_analyze IS NOT NULL OR s.last_autoanalyze IS NOT NULL "
            "FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid "
            "WHERE c.oid = to_regclass(:table)"), {"table": f'"{table}"'}).scalar()
        if not analysed:
            stale.append(table)
    if stale:
        return [Finding("warning", "statistics", f"no planner statistics for {', '.join(stale)}: run ANALYZE")]
    return [Finding("ok", "statistics", "planner statistics present")]
