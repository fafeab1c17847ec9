"""The Index port over SQLAlchemy: the same code serves SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import insert, select, update

from ..core.model import StoredInstance
from ..core.query import Query
from ..core.sync import PeerCounts
from . import removal, sync_queries
from .corrections import study_overrides_of
from .database import Database
from .queries import counts, run_query, stored_instances
from .schema import counters, instance_versions, instances, site_state
from .transaction import IndexTransaction

T = TypeVar("T")


class SqlIndex:
    def __init__(self, url: str) -> None:
        self.db = Database(url)

    def write(self, work: Callable[[IndexTransaction], T]) -> T:
        return self.db.write(lambda conn: work(IndexTransaction(conn)))

    def query(self, query: Query) -> list[dict[str, str]]:
        with self.db.snapshot() as conn:
            return run_query(conn, query)

    def stored_instances(self, uids: dict[str, str]) -> list[StoredInstance]:
        with self.db.read() as conn:
            return stored_instances(conn, uids)

    def counts(self) -> dict[str, int]:
        with self.db.read() as conn:
            return counts(conn)

    def counters(self) -> dict[str, int]:
        with self.db.read() as conn:
            return {name: int(value) for name, value in conn.execute(select(counters.c.name, counters.c.value))}

    def versions(self, state: str | None = "open") -> list[dict[str, Any]]:
        statement = select(instance_versions).order_by(instance_versions.c.id)
        if state:
            statement = statement.where(instance_versions.c.state == state)
        with self.db.read() as conn:
            return [dict(r._mapping) for r in conn.execute(statement)]

    def version(self, version_id: int) -> dict[str, Any] | None:
        with self.db.read() as conn:
            row = conn.execute(select(instance_versions).where(instance_versions.c.id == version_id)).first()
            return dict(row._mapping) if row else None

    def current_hash(self, sop_instance_uid: str) -> str | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(instances.c.content_hash).where(instances.c.SOPInstanceUID == sop_instance_uid)
            ).first()
            return row[0] if row else None

    def resolve_version(self, version_id: int, resolution: str) -> None:
        def work(tx: IndexTransaction) -> None:
            tx.conn.execute(
                update(instance_versions).where(instance_versions.c.id == version_id)
                .values(state="resolved", resolution=resolution)
            )
        self.write(work)

    def study_overrides(self, study_uid: str) -> dict[str, str]:
        return study_overrides_of(self.db, study_uid)

    def peer_counts(self, peer: str, now: datetime) -> PeerCounts:
        with self.db.read() as conn:
            return sync_queries.peer_counts(conn, peer, now)

    def missing_studies(self, peer: str) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            return sync_queries.missing_studies(conn, peer)

    def state(self, key: str) -> str | None:
        with self.db.read() as conn:
            row = conn.execute(select(site_state.c.value).where(site_state.c.key == key)).first()
            return row[0] if row else None

    def set_state(self, key: str, value: str, at: datetime) -> None:
        def work(tx: IndexTransaction) -> None:
            done = tx.conn.execute(update(site_state).where(site_state.c.key == key).values(value=value, updated_at=at))
            if done.rowcount == 0:
                tx.conn.execute(insert(site_state).values(key=key, value=value, updated_at=at))
        self.write(work)

    def remove_study(self, study_uid: str, marker: str, at: datetime,
                     is_marked: Callable[[str], bool]) -> removal.RemovedStudy:
        """A self-test study out of the index (index/removal.py); the caller deletes the files."""
        return self.db.write(lambda conn: removal.remove_study(conn, study_uid, marker, at, is_marked))

    def close(self) -> None:
        self.db.dispose()
