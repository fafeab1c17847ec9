"""Login attempts in the index (table `login_attempts`): the SQL behind core.accounts.RateLimit,
one count for every process serving the site."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.engine import Connection

from .database import Database
from .notices import as_utc
from .schema import login_attempts

WINDOW = timedelta(minutes=1)


class SqlLoginAttempts:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record_unless_over(self, key_hashes: Sequence[str], now: datetime, limit: int) -> datetime | None:
        def work(conn: Connection) -> datetime | None:
            if conn.dialect.name == "postgresql":
                # Read committed would let two processes both count limit - 1; one lock per key,
                # taken in order (no deadlock), makes count-then-insert atomic. SQLite's
                # BEGIN IMMEDIATE already admits one writer at a time.
                for key in sorted(set(key_hashes)):
                    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})
            since = now - WINDOW
            conn.execute(delete(login_attempts).where(login_attempts.c.at <= since))
            full = conn.execute(
                select(func.min(login_attempts.c.at))
                .where(login_attempts.c.key_hash.in_(key_hashes))
                .group_by(login_attempts.c.key_hash)
                .having(func.count() >= limit)).scalars().all()
            frees = [t for t in map(as_utc, full) if t is not None]  # each full key's oldest attempt
            if frees:
                return max(frees) + WINDOW
            conn.execute(insert(login_attempts), [{"key_hash": key, "at": now} for key in key_hashes])
            return None
        return self.db.write(work)
