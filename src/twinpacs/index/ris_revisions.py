"""Versions of the RIS state (ris_versions), written in the transaction that changes the row, so
that replication to twinpacs peers (core/ris_sync.py) finds every change: each one takes the
next revision of one counter, and a peer holds everything at or below the revision it confirmed.

Every RIS writer takes the counter's row lock first (`lock_revisions`), before any row it
changes. On PostgreSQL the lock is held until commit, so revisions become visible in the order
they were taken (a sender never confirms past a revision still being written), and two RIS
writers never wait for each other in opposite orders. SQLite has one writer at a time anyway."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from ..core.ris_sync import Version
from .schema import counters, ris_versions

COUNTER = "ris_revision"
_NEXT = (update(counters).where(counters.c.name == COUNTER).values(value=counters.c.value + 1)
         .returning(counters.c.value))
_LOCK = update(counters).where(counters.c.name == COUNTER).values(value=counters.c.value)


def lock_revisions(conn: Connection) -> None:
    """Hold the revision counter for the rest of this transaction (a no-op update)."""
    conn.execute(_LOCK)


def next_revision(conn: Connection) -> int:
    value = conn.execute(_NEXT).scalar()
    if value is None:
        # The first RIS change ever here. A concurrent first one makes this insert fail, and
        # Database.write runs the whole unit again.
        conn.execute(insert(counters).values(name=COUNTER, value=1))
        return 1
    return int(value)


def mark(conn: Connection, kind: str, key: str, at: datetime, origin: str = "", origin_revision: int = 0) -> int:
    """Record that the row changed: a change made here (origin '') or one received from
    `origin`, where it had `origin_revision`. Returns the row's new revision here."""
    revision = next_revision(conn)
    values = {"revision": revision, "origin": origin, "origin_revision": origin_revision or revision,
              "updated_at": at}
    done = conn.execute(update(ris_versions).where(ris_versions.c.kind == kind, ris_versions.c.row_key == key)
                        .values(**values))
    if done.rowcount == 0:
        conn.execute(insert(ris_versions).values(kind=kind, row_key=key, **values))
    return revision


def version(conn: Connection, kind: str, key: str) -> Version | None:
    row = conn.execute(select(ris_versions.c.origin, ris_versions.c.origin_revision)
                       .where(ris_versions.c.kind == kind, ris_versions.c.row_key == key)).first()
    return Version(row.origin, int(row.origin_revision)) if row else None
