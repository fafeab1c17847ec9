"""The replication outbox's SQL: claiming due rows, settling them, requeueing given-up ones,
and what commitment and the queue API ask of it. Portable SQL; on PostgreSQL a claim skips
rows another node has locked (SKIP LOCKED)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import Connection

from ..core.replication import FAILED, PENDING, OutboxItem, Settlement
from ..core.ris import Order, OrderStatus
from .database import Database
from .notices import as_utc
from .schema import instances, outbox, series, studies


def _due(peer: str, now: datetime) -> Any:
    return and_(outbox.c.peer == peer, outbox.c.state == PENDING,
                or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= now))


class SqlOutbox:
    def __init__(self, db: Database) -> None:
        self.db = db

    def has_due(self, peer: str, now: datetime) -> bool:
        with self.db.read() as conn:
            return conn.execute(select(outbox.c.id).where(_due(peer, now)).limit(1)).first() is not None

    def next_due(self, peer: str) -> datetime | None:
        statement = select(func.min(outbox.c.next_attempt_at)).where(outbox.c.peer == peer, outbox.c.state == PENDING)
        with self.db.read() as conn:
            due = conn.execute(statement).scalar()
        return as_utc(due) if due else None

    def claim(self, peer: str, now: datetime, limit: int, lease_until: datetime) -> list[OutboxItem]:
        """The most urgent due rows (STAT first), oldest first within a priority, leased until `lease_until` so no other claimer takes them."""
        def work(conn: Connection) -> list[OutboxItem]:
            statement = (select(outbox.c.id, outbox.c.SOPInstanceUID, outbox.c.content_hash, outbox.c.attempts)
                         .where(_due(peer, now)).order_by(outbox.c.priority.desc(), outbox.c.id).limit(limit))
            if not self.db.is_sqlite:  # SQLite has one writer at a time: nothing to skip
                statement = statement.with_for_update(skip_locked=True)
            rows = conn.execute(statement).all()
            if rows:
                conn.execute(update(outbox).where(outbox.c.id.in_([r.id for r in rows]))
                             .values(next_attempt_at=lease_until))
            return [OutboxItem(r.id, peer, r.SOPInstanceUID, r.content_hash, r.attempts) for r in rows]
        return self.db.write(work)

    def settle(self, settlements: list[Settlement], now: datetime) -> None:
        """Record a batch's outcome in one transaction. Only pending rows change: a row an
        operator touched meanwhile is not overwritten."""
        def work(conn: Connection) -> None:
            for s in settlements:
                conn.execute(update(outbox).where(and_(outbox.c.id == s.id, outbox.c.state == PENDING)).values(
                    state=s.state, attempts=s.attempts, next_attempt_at=s.next_attempt_at,
                    last_error=s.last_error, updated_at=now))
        self.db.write(work)

    def retry_failed(self, peer: str, now: datetime) -> int:
        """Failed rows back to pending, due now, attempts from zero; last_error stays until
        the next attempt replaces or clears it."""
        def work(conn: Connection) -> int:
            done = conn.execute(update(outbox).where(and_(outbox.c.peer == peer, outbox.c.state == FAILED))
                                .values(state=PENDING, attempts=0, next_attempt_at=now, updated_at=now))
            return int(done.rowcount)
        return self.db.write(work)

    def prioritise_order(self, order: Order) -> int:
        """Give the pending rows of the order's images (stored before the order said STAT, or
        before it arrived) the order's priority; returns the rows changed."""
        rank = 0 if order.status is OrderStatus.CANCELLED else order.priority.rank
        of_order = (select(instances.c.SOPInstanceUID)
                    .join(series, series.c.id == instances.c.series_pk)
                    .join(studies, studies.c.id == series.c.study_pk)
                    .where(studies.c.AccessionNumber == order.accession_number))

        def work(conn: Connection) -> int:
            done = conn.execute(update(outbox).where(outbox.c.state == PENDING, outbox.c.priority != rank,
                                                     outbox.c.SOPInstanceUID.in_(of_order)).values(priority=rank))
            return int(done.rowcount)
        return self.db.write(work)

    def unconfirmed(self, uids: list[str]) -> set[str]:
        """Those of `uids` whose current content some peer has not confirmed yet."""
        if not uids:
            return set()
        statement = (select(outbox.c.SOPInstanceUID).distinct()
                     .join(instances, and_(instances.c.SOPInstanceUID == outbox.c.SOPInstanceUID,
                                           instances.c.content_hash == outbox.c.content_hash))
                     .where(outbox.c.SOPInstanceUID.in_(uids), outbox.c.state != "confirmed"))
        with self.db.read() as conn:
            return {row[0] for row in conn.execute(statement)}

    def last_errors(self) -> dict[str, str]:
        """Per peer, the latest error recorded on a row still pending or failed."""
        statement = (select(outbox.c.peer, outbox.c.last_error)
                     .where(outbox.c.last_error != "", outbox.c.state.in_([PENDING, FAILED]))
                     .order_by(outbox.c.updated_at, outbox.c.id))  # ascending: the latest wins
        with self.db.read() as conn:
            return {peer: error for peer, error in conn.execute(statement)}
