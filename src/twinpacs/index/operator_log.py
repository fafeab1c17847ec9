"""The operator log in the index (table `operator_log`): append and read only. This module
must never gain an UPDATE or a DELETE on the table; tests/notices checks its source."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, Row

from ..core.operator_log import LogEntry
from .database import Database
from .notices import as_utc, new_id
from .schema import operator_log


def _entry(row: Row[Any]) -> LogEntry:
    m = row._mapping
    at = as_utc(m["at"])
    assert at is not None
    return LogEntry(id=m["id"], at=at, actor=m["actor"], action=m["action"], reason=m["reason"],
                    details=json.loads(m["details"] or "{}"))


class SqlOperatorLogStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def append(self, at: datetime, actor: str, action: str, reason: str, details: dict[str, Any]) -> LogEntry:
        def work(conn: Connection) -> LogEntry:
            done = conn.execute(insert(operator_log).values(
                at=at, actor=actor, action=action, reason=reason, details=json.dumps(details, default=str)))
            row = conn.execute(select(operator_log).where(operator_log.c.id == new_id(done))).one()
            return _entry(row)
        return self.db.write(work)

    def entries(self, limit: int | None = None, action: str | None = None) -> list[LogEntry]:
        statement = select(operator_log).order_by(operator_log.c.id.desc()).limit(limit)
        if action:
            statement = statement.where(operator_log.c.action == action)
        with self.db.read() as conn:
            return [_entry(row) for row in conn.execute(statement)]
