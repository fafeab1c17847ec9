"""Schema revisions with Alembic. A start only *checks* the revision: an empty database is
created at head (a first start, not an upgrade), a database at head is used, anything else
is refused with the command to run. Upgrades happen only through `twinpacs db upgrade`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from ..config import masked
from ..errors import ConfigurationError
from .schema import metadata, site_state

_MIGRATIONS = Path(__file__).parent / "migrations"
# Any number; all twinpacs processes agree on it so that two nodes starting on one empty
# PostgreSQL database do not both create the tables.
_PG_LOCK_KEY = 0x7470_6163


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    return {script.revision for script in _scripts().walk_revisions()}


@dataclass(frozen=True)
class SchemaState:
    current: str | None  # None: no alembic_version row
    head: str
    empty: bool  # no table at all: a new database

    @property
    def at_head(self) -> bool:
        return self.current == self.head


def masked_url(url: str) -> str:
    """The database URL as messages show it: config.masked decides what is a secret."""
    return masked("database.url", url)


def schema_state(conn: Connection) -> SchemaState:
    current = MigrationContext.configure(conn).get_current_revision()
    tables = set(inspect(conn).get_table_names()) - {"alembic_version"}
    return SchemaState(current, head_revision(), empty=current is None and not tables)


def _serialise(conn: Connection) -> None:
    """Creation and upgrades are one at a time per database (SQLite: BEGIN IMMEDIATE already)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})


def ensure_current(writer: Engine, reader: Engine, url: str) -> None:
    """At start: create a new database at head, accept one at head, refuse anything else.
    The usual case (at head) is one read on a reader connection: no write lock is taken."""
    with reader.connect() as conn:
        state = schema_state(conn)
        conn.rollback()
    if state.at_head:
        return
    if state.empty:
        with writer.begin() as conn:
            _serialise(conn)
            state = schema_state(conn)  # another process may have created it meanwhile
            if state.empty:
                command.upgrade(_config(conn), "head")
                mark_created(conn)
                return
    if not state.at_head:
        raise ConfigurationError(refusal(state, url))


CREATED_KEY = "index_created_at"


def mark_created(conn: Connection) -> None:
    """Record that this database was created by a version that keeps configuration history,
    so that an index filled by `twinpacs import` before its first start is not taken for one
    whose history went missing."""
    now = datetime.now(timezone.utc)
    conn.execute(site_state.insert().values(key=CREATED_KEY, value=now.isoformat(), updated_at=now))


def refusal(state: SchemaState, url: str) -> str:
    where = f"the index database {masked_url(url)}"
    if state.current is None:
        return (f"{where} holds tables but no schema revision (expected {state.head}); it was not created "
                "by twinpacs: point database.url at a twinpacs index or at an empty database")
    if state.current not in known_revisions():
        return (f"{where} is at schema revision {state.current}, which this twinpacs version does not know "
                f"(its newest is {state.head}): it was upgraded by a newer twinpacs; run that version "
                "or restore a backup")
    return (f"{where} is at schema revision {state.current}, this twinpacs version expects {state.head}. "
            f"Back it up, then run: twinpacs db upgrade --database-url '{masked_url(url)}' "
            "(or: twinpacs db upgrade --config FILE with the site's configuration file)")


def upgrade(engine: Engine, target: str = "head") -> tuple[str | None, str]:
    """Apply migrations up to `target`; returns (from, to). Refuses a database from a newer version."""
    with engine.begin() as conn:
        _serialise(conn)
        state = schema_state(conn)
        if state.current is not None and state.current not in known_revisions():
            raise ConfigurationError(refusal(state, str(engine.url)))
        if not state.empty and state.current is None:
            raise ConfigurationError(refusal(state, str(engine.url)))
        command.upgrade(_config(conn), target)
        revisions = state.current, MigrationContext.configure(conn).get_current_revision() or ""
    if revisions[0] != revisions[1]:
        analyze(engine)  # new indexes and columns: let the planner see them before the first query
    return revisions


def analyze(engine: Engine) -> None:
    """Fresh planner statistics on PostgreSQL, after a migration or an upgrade (SQLite plans
    without them). Only this index's tables: a bare ANALYZE visits every schema of the database."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("ANALYZE " + ", ".join(f'"{t.name}"' for t in metadata.sorted_tables))
