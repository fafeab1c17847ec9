"""The index backend the suite runs on: TWINPACS_TEST_BACKEND=sqlite (the default) or
postgresql. Every test that builds a site asks backend_url() for its database.

On PostgreSQL each site gets a schema of its own in the machine's server, reached through the
connection's search_path. A site built again on the same data folder (a restart) gets the same
schema. The session drops every schema it made (tests/conftest.py), and schemas a killed run
left behind once they are older than STALE_AFTER."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

BACKENDS = ("sqlite", "postgresql")
BACKEND = os.environ.get("TWINPACS_TEST_BACKEND", "sqlite")
if BACKEND not in BACKENDS:
    raise RuntimeError(f"TWINPACS_TEST_BACKEND={BACKEND!r}: expected one of {', '.join(BACKENDS)}")
ON_POSTGRESQL = BACKEND == "postgresql"

POSTGRES_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# The same server over its Unix socket, for sites in a private network namespace (no loopback
# route to 5432 there; a Unix socket is a file, reachable from any namespace).
POSTGRES_SOCKET = "postgresql+psycopg://postgres@/test?host=/var/run/postgresql"
SESSION_TIME_ZONE = "America/New_York"
SCHEMA_PREFIX = "tp_"
STALE_AFTER_S = 6 * 3600  # far longer than any run, so a concurrent run's schemas are safe

_by_data_dir: dict[Path, str] = {}
_created: list[str] = []


def schema_url(schema: str, unix_socket: bool = False) -> str:
    """The schema as the connection's search path, in a session time zone other than UTC (as a
    hospital's server may have): times must come back as UTC all the same."""
    options = f"options=-csearch_path%3D{schema}%20-ctimezone%3D{SESSION_TIME_ZONE}"
    return f"{POSTGRES_SOCKET}&{options}" if unix_socket else f"{POSTGRES_SERVER}?{options}"


def create_schema(unix_socket: bool = False) -> str:
    """A new empty schema; its name carries its creation time so a later run can tell stale ones."""
    schema = f"{SCHEMA_PREFIX}{int(time.time())}_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(POSTGRES_SOCKET if unix_socket else POSTGRES_SERVER, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    finally:
        engine.dispose()
    _created.append(schema)
    return schema


def drop_schema(schema: str) -> None:
    engine = sa.create_engine(POSTGRES_SERVER, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        engine.dispose()
    if schema in _created:
        _created.remove(schema)


def backend_url(data_dir: Path, unix_socket: bool = False) -> str:
    """The index URL of the site whose data folder is `data_dir`, under the active backend;
    `unix_socket` for a site in a private network namespace."""
    if not ON_POSTGRESQL:
        return f"sqlite:///{data_dir / 'index.sqlite3'}"
    key = Path(data_dir).resolve()
    if key not in _by_data_dir:
        _by_data_dir[key] = schema_url(create_schema(unix_socket), unix_socket)
    return _by_data_dir[key]


def backend_env(data_dir: Path) -> dict[str, str]:
    """Environment for a twinpacs subprocess on `data_dir` (environment overrides config)."""
    return {"TWINPACS_DATABASE__URL": backend_url(data_dir)} if ON_POSTGRESQL else {}


def drop_created_schemas() -> None:
    """Every schema this process made, plus stale ones of runs that never cleaned up; one
    transaction each (a single one would run out of lock slots)."""
    engine = sa.create_engine(POSTGRES_SERVER, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            names = conn.execute(sa.text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tp\\_%'")).scalars()
            cutoff = time.time() - STALE_AFTER_S
            stale = [n for n in names if _created_at(n) < cutoff]
        for schema in [*_created, *stale]:
            with engine.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        engine.dispose()
    _created.clear()
    _by_data_dir.clear()


def _created_at(schema: str) -> float:
    """Creation time encoded in the name; names of another form are never taken as stale."""
    stamp = schema.removeprefix(SCHEMA_PREFIX).split("_", 1)[0]
    return float(stamp) if stamp.isdigit() and len(stamp) == 10 else float("inf")
