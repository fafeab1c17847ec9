"""Incident drafts in the index (table `incident_drafts`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, Row

from ..core.incidents import IncidentDraft
from .database import Database
from .notices import as_utc, new_id
from .schema import incident_drafts


def _draft(row: Row[Any]) -> IncidentDraft:
    m = row._mapping
    created_at = as_utc(m["created_at"])
    assert created_at is not None
    return IncidentDraft(id=m["id"], created_at=created_at, site=m["site"], title=m["title"],
                         description=m["description"], details=json.loads(m["details"] or "{}"))


class SqlIncidentStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, created_at: datetime, site: str, title: str, description: str,
            details: dict[str, Any]) -> IncidentDraft:
        def work(conn: Connection) -> IncidentDraft:
            done = conn.execute(insert(incident_drafts).values(
                created_at=created_at, site=site, title=title, description=description,
                details=json.dumps(details, default=str)))
            row = conn.execute(
                select(incident_drafts).where(incident_drafts.c.id == new_id(done))).one()
            return _draft(row)
        return self.db.write(work)

    def drafts(self) -> list[IncidentDraft]:
        with self.db.read() as conn:
            return [_draft(r) for r in conn.execute(select(incident_drafts).order_by(incident_drafts.c.id.desc()))]
