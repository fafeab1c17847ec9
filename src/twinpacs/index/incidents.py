"""Incident drafts in the index (tables `incident_drafts`, `incident_escalations`)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Row

from ..core.incidents import Escalation, IncidentDraft
from .database import Database
from .notices import as_utc, new_id
from .schema import incident_drafts, incident_escalations, outbox


def _escalation(row: Row[Any]) -> Escalation:
    m = row._mapping
    created, updated = as_utc(m["created_at"]), as_utc(m["updated_at"])
    assert created is not None and updated is not None
    return Escalation(id=m["id"], receiver=m["receiver"], state=m["state"], attempts=m["attempts"],
                      last_error=m["last_error"], created_at=created, updated_at=updated)


def _draft(row: Row[Any], escalations: list[Escalation]) -> IncidentDraft:
    m = row._mapping
    created_at = as_utc(m["created_at"])
    assert created_at is not None
    return IncidentDraft(id=m["id"], created_at=created_at, site=m["site"], title=m["title"],
                         description=m["description"], details=json.loads(m["details"] or "{}"),
                         condition=m["condition"], classification=json.loads(m["classification"] or "{}"),
                         severity=m["severity"], state=m["state"], reviewed_at=as_utc(m["reviewed_at"]),
                         reviewed_by=m["reviewed_by"], review_note=m["review_note"],
                         escalations=tuple(escalations))


def _with_escalations(conn: Connection, rows: list[Row[Any]]) -> list[IncidentDraft]:
    ids = [r._mapping["id"] for r in rows]
    by_draft: dict[int, list[Escalation]] = defaultdict(list)
    if ids:
        found = conn.execute(select(incident_escalations).where(incident_escalations.c.draft_id.in_(ids))
                             .order_by(incident_escalations.c.id))
        for e in found:
            by_draft[e._mapping["draft_id"]].append(_escalation(e))
    return [_draft(r, by_draft[r._mapping["id"]]) for r in rows]


class SqlIncidentStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, created_at: datetime, site: str, title: str, description: str, details: dict[str, Any],
            condition: str = "", classification: dict[str, Any] | None = None,
            severity: str = "warning") -> tuple[IncidentDraft, bool]:
        def work(conn: Connection) -> tuple[IncidentDraft, bool]:
            if condition:
                # The unique index on open_condition settles a race between two nodes: the loser's
                # INSERT fails, Database.write runs this again and finds the winner's draft here.
                existing = conn.execute(select(incident_drafts)
                                        .where(incident_drafts.c.open_condition == condition)).first()
                if existing is not None:
                    return _with_escalations(conn, [existing])[0], False
            done = conn.execute(insert(incident_drafts).values(
                created_at=created_at, site=site, title=title, description=description,
                details=json.dumps(details, default=str), condition=condition,
                open_condition=condition or None, classification=json.dumps(classification or {}),
                severity=severity, state="open"))
            row = conn.execute(select(incident_drafts).where(incident_drafts.c.id == new_id(done))).one()
            return _draft(row, []), True
        return self.db.write(work)

    def drafts(self) -> list[IncidentDraft]:
        with self.db.read() as conn:
            rows = list(conn.execute(select(incident_drafts).order_by(incident_drafts.c.id.desc())))
            return _with_escalations(conn, rows)

    def get(self, draft_id: int) -> IncidentDraft | None:
        with self.db.read() as conn:
            row = conn.execute(select(incident_drafts).where(incident_drafts.c.id == draft_id)).first()
            return _with_escalations(conn, [row])[0] if row is not None else None

    def open_conditions(self) -> set[str]:
        with self.db.read() as conn:
            return set(conn.execute(select(incident_drafts.c.open_condition)
                                    .where(incident_drafts.c.open_condition.is_not(None))).scalars())

    def review(self, draft_id: int, at: datetime, by: str, note: str) -> IncidentDraft | None:
        def work(conn: Connection) -> None:
            conn.execute(update(incident_drafts)
                         .where(incident_drafts.c.id == draft_id, incident_drafts.c.state == "open")
                         .values(state="reviewed", open_condition=None, reviewed_at=at, reviewed_by=by,
                                 review_note=note))
        self.db.write(work)
        return self.get(draft_id)


class SqlEscalationLog:
    """Each delivery's progress: a row when it starts, updated after every attempt."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def start(self, draft_id: int, receiver: str, at: datetime) -> int:
        def work(conn: Connection) -> int:
            return new_id(conn.execute(insert(incident_escalations).values(
                draft_id=draft_id, receiver=receiver, state="sending", attempts=0, created_at=at, updated_at=at)))
        return self.db.write(work)

    def attempt(self, escalation_id: int, state: str, error: str, at: datetime) -> None:
        def work(conn: Connection) -> None:
            conn.execute(update(incident_escalations).where(incident_escalations.c.id == escalation_id)
                         .values(state=state, attempts=incident_escalations.c.attempts + 1,
                                 last_error=error, updated_at=at))
        self.db.write(work)


def replication_trouble(db: Database, min_attempts: int) -> dict[str, dict[str, int]]:
    """Per peer: outbox rows given up (failed), and rows still pending after at least
    `min_attempts` failed attempts; peers with neither are left out."""
    with db.read() as conn:
        failed = dict(conn.execute(select(outbox.c.peer, func.count()).where(outbox.c.state == "failed")
                                   .group_by(outbox.c.peer)).all())
        retrying = dict(conn.execute(select(outbox.c.peer, func.count())
                                     .where(outbox.c.state == "pending", outbox.c.attempts >= min_attempts)
                                     .group_by(outbox.c.peer)).all())
    return {peer: {"failed": failed.get(peer, 0), "retrying": retrying.get(peer, 0)}
            for peer in sorted(failed.keys() | retrying.keys())}
