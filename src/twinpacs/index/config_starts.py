"""The start history in the index (table `config_starts`): the SQL behind twinpacs.fingerprint."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection, Row

from .database import Database
from .notices import as_utc, new_id
from .migrate import CREATED_KEY
from .schema import config_starts, instances, site_state


@dataclass(frozen=True)
class ConfigStart:
    id: int
    started_at: datetime
    fingerprint: str
    settings: dict[str, dict[str, Any]]  # dotted key -> {"value", "explicit", "source"}, masked
    environment: dict[str, Any]
    source: str  # the configuration file, if any

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "started_at": self.started_at.isoformat(), "fingerprint": self.fingerprint,
                "settings": self.settings, "environment": self.environment, "source": self.source}


def _start(row: Row[Any]) -> ConfigStart:
    m = row._mapping
    started_at = as_utc(m["started_at"])
    assert started_at is not None
    return ConfigStart(id=m["id"], started_at=started_at, fingerprint=m["fingerprint"],
                       settings=json.loads(m["settings"]), environment=json.loads(m["environment"]),
                       source=m["source"])


class SqlConfigStarts:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, started_at: datetime, fingerprint: str, settings: dict[str, Any],
            environment: dict[str, Any], source: str) -> ConfigStart:
        def work(conn: Connection) -> int:
            return new_id(conn.execute(insert(config_starts).values(
                started_at=started_at, fingerprint=fingerprint, settings=json.dumps(settings, sort_keys=True),
                environment=json.dumps(environment, sort_keys=True), source=source)))
        start = self.get(self.db.write(work))
        assert start is not None
        return start

    def get(self, start_id: int) -> ConfigStart | None:
        with self.db.read() as conn:
            row = conn.execute(select(config_starts).where(config_starts.c.id == start_id)).first()
            return _start(row) if row else None

    def latest(self, count: int = 1) -> list[ConfigStart]:
        """The newest `count` starts, newest first."""
        with self.db.read() as conn:
            rows = conn.execute(select(config_starts).order_by(config_starts.c.id.desc()).limit(count))
            return [_start(row) for row in rows]

    def all(self) -> list[ConfigStart]:
        """Every start, oldest first."""
        with self.db.read() as conn:
            return [_start(row) for row in conn.execute(select(config_starts).order_by(config_starts.c.id))]

    def count(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(config_starts)).scalar_one())

    def history_missing(self) -> bool:
        """Whether starts should have been recorded but are not: the index holds objects and
        was not created by a version that records them (see migrate.mark_created)."""
        with self.db.read() as conn:
            if conn.execute(select(instances.c.id).limit(1)).first() is None:
                return False
            created = conn.execute(select(site_state.c.key).where(site_state.c.key == CREATED_KEY)).first()
            return created is None

    def engine(self) -> tuple[str, str]:
        """The database engine's name and server version, as the server reports it."""
        with self.db.read() as conn:
            name = conn.dialect.name
            if name == "sqlite":
                version = conn.exec_driver_sql("select sqlite_version()").scalar_one()
            elif name == "postgresql":
                version = conn.exec_driver_sql("show server_version").scalar_one()
            else:
                version = ".".join(str(p) for p in conn.dialect.server_version_info or ())
            return name, str(version)
