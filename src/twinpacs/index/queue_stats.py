"""Queue figures computed from the index at the moment they are asked for (metrics scrape,
status): counts per state, the oldest pending item, retries. Read-only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, case, func, select

from ..core.queues import QUEUE_STATES, QueueStats
from .database import Database
from .notices import as_utc
from .schema import outbox


def replication_stats(db: Database, peers: list[str]) -> list[QueueStats]:
    """One QueueStats per peer: every configured peer (zeros if it has no rows), and any
    peer name still present in the outbox though no longer configured."""
    by_peer: dict[str, dict[str, int]] = {p: {s: 0 for s in QUEUE_STATES} for p in peers}
    oldest: dict[str, datetime | None] = {}
    retrying: dict[str, int] = {}
    attempts: dict[str, int] = {}
    pending = outbox.c.state == "pending"
    grouped = select(
        outbox.c.peer, outbox.c.state, func.count(), func.sum(outbox.c.attempts),
        func.min(case((pending, outbox.c.created_at))),
        func.sum(case((and_(pending, outbox.c.last_error != ""), 1), else_=0)),
    ).group_by(outbox.c.peer, outbox.c.state)
    with db.read() as conn:
        for peer, state, count, tries, first_pending, failing in conn.execute(grouped):
            by_peer.setdefault(peer, {s: 0 for s in QUEUE_STATES})[state] = int(count)
            attempts[peer] = attempts.get(peer, 0) + int(tries or 0)
            if state == "pending":
                oldest[peer] = first_pending
                retrying[peer] = int(failing or 0)
    return [
        QueueStats("replication", peer, counts, as_utc(oldest.get(peer)),
                   retrying.get(peer, 0), attempts.get(peer, 0))
        for peer, counts in sorted(by_peer.items())
    ]
