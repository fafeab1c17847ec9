"""What `twinpacs selftest` asks of the index: each run's steps and timings (table
`selftest_runs`), so the next run can show how long every step took last time, and the
replication state of the test objects."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from .database import Database
from .notices import as_utc, new_id
from .schema import outbox, selftest_runs


def record_run(db: Database, at: datetime, passed: bool, steps: list[dict[str, Any]]) -> int:
    def work(conn: Connection) -> int:
        done = conn.execute(insert(selftest_runs).values(at=at, passed=int(passed), steps=json.dumps(steps)))
        return new_id(done)
    return db.write(work)


def latest_run(db: Database) -> dict[str, Any] | None:
    with db.read() as conn:
        row = conn.execute(select(selftest_runs).order_by(selftest_runs.c.id.desc()).limit(1)).first()
    if row is None:
        return None
    at = as_utc(row.at)
    return {"id": row.id, "at": at.isoformat() if at else None, "passed": bool(row.passed),
            "steps": json.loads(row.steps)}


def replication_states(db: Database, uids: list[str]) -> dict[str, dict[str, str]]:
    """SOP Instance UID -> {peer: state of its newest outbox row} (what sync status counts)."""
    states: dict[str, dict[str, str]] = {uid: {} for uid in uids}
    if not uids:
        return states
    statement = (select(outbox.c.SOPInstanceUID, outbox.c.peer, outbox.c.state)
                 .where(outbox.c.SOPInstanceUID.in_(uids)).order_by(outbox.c.id))
    with db.read() as conn:
        for uid, peer, state in conn.execute(statement):
            states[uid][peer] = state  # ascending ids: the newest row wins
    return states
