"""The outbox SQL, on SQLite and PostgreSQL: claims lease rows, settlements follow the
lifecycle in core/replication.py, and give-ups come back only on request."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from twinpacs.core.archive import Archive, utcnow
from twinpacs.core.replication import FAILED, LEASE, PENDING, Policy, Verdict, settle
from twinpacs.index.outbox import SqlOutbox
from twinpacs.index.schema import outbox
from twinpacs.index.sql import SqlIndex
from twinpacs.storage.filesystem import FilesystemBlobStore

from .conftest import objects


def test_claim_settle_and_retry_failed(index: SqlIndex, tmp_path: Path) -> None:
    archive = Archive(FilesystemBlobStore(tmp_path / "store"), index, peers=["B"])
    uids = [archive.store(data, "TEST").sop_instance_uid for data in objects(3, seed=30)]
    box = SqlOutbox(index.db)
    now = utcnow()

    first = box.claim("B", now, 2, now + LEASE)
    assert [i.sop_instance_uid for i in first] == uids[:2]
    (third,) = box.claim("B", now, 2, now + LEASE)
    assert box.claim("B", now, 2, now + LEASE) == [] and not box.has_due("B", now)  # all leased
    assert box.unconfirmed(uids) == set(uids)

    policy = Policy(give_up_after=1)
    box.settle([settle(first[0], Verdict("confirmed"), policy, now),
                settle(first[1], Verdict(PENDING, "peer down"), Policy(retry_initial_s=60), now),
                settle(third, Verdict(PENDING, "peer down"), policy, now)], now)
    assert box.unconfirmed(uids) == set(uids[1:])
    assert not box.has_due("B", now + timedelta(seconds=30))  # backing off: 48-60 s
    assert box.has_due("B", now + timedelta(seconds=61))
    assert box.last_errors() == {"B": "gave up after 1 attempts: peer down"}

    assert box.retry_failed("B", now) == 1 and box.retry_failed("B", now) == 0
    (again,) = box.claim("B", now, 5, now + LEASE)
    assert (again.sop_instance_uid, again.attempts) == (uids[2], 0)
    with index.db.read() as conn:
        assert FAILED not in set(conn.execute(select(outbox.c.state)).scalars())
