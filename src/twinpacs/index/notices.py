"""Notices in the index (table `notices`): the SQL behind core.notices.NoticeStore."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, CursorResult, Row

from ..core.notices import Notice, NoticeList
from .database import Database
from .schema import notices


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes (every time twinpacs writes is UTC); PostgreSQL aware
    ones in the session's time zone, which need not be UTC on a hospital's server."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def new_id(result: CursorResult[Any]) -> int:
    """The primary key an INSERT just gave its row."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _notice(row: Row[Any]) -> Notice:
    m = row._mapping
    posted_at = as_utc(m["posted_at"])
    assert posted_at is not None
    return Notice(id=m["id"], posted_at=posted_at, severity=m["severity"], title=m["title"], body=m["body"],
                  studies=json.loads(m["studies"] or "[]"), posted_by=m["posted_by"],
                  cleared_at=as_utc(m["cleared_at"]))


class SqlNoticeStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, posted_at: datetime, severity: str, title: str, body: str,
            studies: list[dict[str, Any]], posted_by: str) -> Notice:
        def work(conn: Connection) -> int:
            done = conn.execute(insert(notices).values(
                posted_at=posted_at, severity=severity, title=title, body=body,
                studies=json.dumps(studies, default=str), posted_by=posted_by))
            return new_id(done)
        notice = self.get(self.db.write(work))
        assert notice is not None
        return notice

    def notices(self, active_only: bool) -> NoticeList:
        statement = select(notices).order_by(notices.c.id.desc())
        if active_only:
            statement = statement.where(notices.c.cleared_at.is_(None))
        with self.db.read() as conn:
            return [_notice(row) for row in conn.execute(statement)]

    def get(self, notice_id: int) -> Notice | None:
        with self.db.read() as conn:
            row = conn.execute(select(notices).where(notices.c.id == notice_id)).first()
            return _notice(row) if row else None

    def clear(self, notice_id: int, at: datetime) -> Notice | None:
        self.db.write(lambda conn: conn.execute(
            update(notices).where(notices.c.id == notice_id, notices.c.cleared_at.is_(None)).values(cleared_at=at)))
        return self.get(notice_id)
