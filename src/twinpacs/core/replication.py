"""Replication: every outbox row is sent to its peer, confirmed by that peer, or retried with
backoff until it is given up on visibly (issue 3; G1 queues the rows, G4 counts them).

The life of one outbox row (one per stored change and peer):

    pending --peer confirms the content hash (or Storage Commitment)--> confirmed
    pending --sent; the peer cannot verify (DIMSE without commitment)--> unverified
    pending --error, attempts < give_up_after--> pending, next_attempt_at = now + backoff
    pending --error, attempts = give_up_after--> failed (last_error kept; visible)
    failed  --retry_failed(peer)--> pending (attempts start again)

A worker thread per peer claims due rows in batches, hands them to the peer's client, and
settles the whole batch in one transaction: a row is never left half-marked."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from ..errors import TwinpacsError
from ..ports import BlobStore
from .archive import utcnow
from .model import StoredInstance
from .parsing import parse_part10

log = logging.getLogger(__name__)

CONFIRMED, UNVERIFIED, PENDING, FAILED = "confirmed", "unverified", "pending", "failed"
# A claimed batch is hidden from other claimers (another node on a shared PostgreSQL) for this
# long; it must outlast one delivery. A process that dies mid-send leaves its rows pending,
# retried once the lease has run out.
LEASE = timedelta(seconds=120)
IDLE_WAIT_S = 1.0  # the longest a worker sleeps without looking for due rows (or a stop)
STOP_JOIN_S = 15.0  # stop() waits this long for a delivery in flight to settle


@dataclass(frozen=True)
class OutboxItem:
    id: int
    peer: str
    sop_instance_uid: str
    content_hash: str
    attempts: int


@dataclass(frozen=True)
class Outgoing:
    """One object to send: what the index knows of it and its stored bytes."""

    item: OutboxItem
    instance: StoredInstance
    data: bytes
    path: Path | None  # the stored file, which DIMSE senders stream as it is


@dataclass(frozen=True)
class Verdict:
    state: str  # CONFIRMED, UNVERIFIED, or PENDING for an error
    error: str = ""


@dataclass(frozen=True)
class Settlement:
    id: int
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str


@dataclass(frozen=True)
class Policy:
    batch_size: int = 20
    retry_initial_s: float = 1.0
    retry_max_s: float = 300.0
    give_up_after: int = 20


class PeerClient(Protocol):
    """Sends objects to one peer; returns a Verdict per SOP Instance UID sent (a missing one
    counts as an error). Raises nothing for a peer's failure: it is a verdict."""

    name: str

    def deliver(self, objects: Sequence[Outgoing]) -> dict[str, Verdict]: ...
    def close(self) -> None: ...


class OutboxStore(Protocol):
    def has_due(self, peer: str, now: datetime) -> bool: ...
    def next_due(self, peer: str) -> datetime | None: ...
    def claim(self, peer: str, now: datetime, limit: int, lease_until: datetime) -> list[OutboxItem]: ...
    def settle(self, settlements: list[Settlement], now: datetime) -> None: ...
    def retry_failed(self, peer: str, now: datetime) -> int: ...
    def unconfirmed(self, uids: list[str]) -> set[str]: ...


def backoff(attempts: int, policy: Policy) -> float:
    """Seconds before the next try after `attempts` failed ones: doubling from retry_initial_s,
    capped at retry_max_s, jittered downwards by up to a fifth so that many rows failing
    together do not come back in lockstep, and the cap is never exceeded."""
    delay = min(policy.retry_max_s, policy.retry_initial_s * 2.0 ** max(0, attempts - 1))
    return delay * random.uniform(0.8, 1.0)


def settle(item: OutboxItem, verdict: Verdict, policy: Policy, now: datetime) -> Settlement:
    if verdict.state in (CONFIRMED, UNVERIFIED):
        return Settlement(item.id, verdict.state, item.attempts + 1, None, "")
    attempts = item.attempts + 1
    error = verdict.error or "no verdict from the peer client"
    if attempts >= policy.give_up_after:
        return Settlement(item.id, FAILED, attempts, None, f"gave up after {attempts} attempts: {error}")
    return Settlement(item.id, PENDING, attempts, now + timedelta(seconds=backoff(attempts, policy)), error)


class PeerWorker:
    """The loop for one peer: claim due rows, deliver, settle; wait for a store or a due retry."""

    def __init__(self, outbox: OutboxStore, blobs: BlobStore, client: PeerClient, policy: Policy,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.outbox = outbox
        self.blobs = blobs
        self.client = client
        self.policy = policy
        self.clock = clock
        self.wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Deliver one batch of due rows; the number of rows settled."""
        now = self.clock()
        if not self.outbox.has_due(self.client.name, now):  # a read: no write lock while idle
            return 0
        items = self.outbox.claim(self.client.name, now, self.policy.batch_size, now + LEASE)
        if not items:
            return 0
        verdicts: dict[int, Verdict] = {}
        objects = []
        for item in items:
            try:
                objects.append(load(self.blobs, item))
            except TwinpacsError as exc:  # the store lost it: say so, in the row, every attempt
                verdicts[item.id] = Verdict(PENDING, f"cannot read the object here: {exc.message}")
        try:
            by_uid = self.client.deliver(objects) if objects else {}
        except Exception as exc:  # a client bug must not kill the worker or strand the batch
            log.exception("replication to %s: client failed", self.client.name)
            by_uid = {o.item.sop_instance_uid: Verdict(PENDING, f"{type(exc).__name__}: {exc}") for o in objects}
        for outgoing in objects:
            verdicts[outgoing.item.id] = by_uid.get(outgoing.item.sop_instance_uid, Verdict(PENDING))
        done = self.clock()
        self.outbox.settle([settle(item, verdicts[item.id], self.policy, done) for item in items], done)
        return len(items)

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=f"replication-{self.client.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Prompt unless a delivery is in flight; that one is settled first (the client's
        timeouts bound it), so no row is left claimed by a worker that has gone."""
        self._stopping.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(STOP_JOIN_S)
            if self._thread.is_alive():
                log.warning("replication to %s: a delivery is still in flight at stop", self.client.name)
        self.client.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.wake.clear()  # before looking, so a store during the batch wakes us again
            try:
                if self.run_once():
                    continue
                wait = self._until_next_due()
            except Exception:  # e.g. the database is briefly unavailable: log, wait, go on
                log.exception("replication to %s: batch failed", self.client.name)
                wait = IDLE_WAIT_S
            self.wake.wait(wait)

    def _until_next_due(self) -> float:
        """Seconds until the earliest backed-off row is due again, at most IDLE_WAIT_S."""
        due = self.outbox.next_due(self.client.name)
        if due is None:
            return IDLE_WAIT_S
        return min(IDLE_WAIT_S, max(0.0, (due - self.clock()).total_seconds()))


def load(blobs: BlobStore, item: OutboxItem) -> Outgoing:
    data = blobs.get(item.content_hash)
    parsed = parse_part10(data)
    ds = parsed.dataset
    instance = StoredInstance(item.sop_instance_uid, str(ds.SOPClassUID), str(ds.StudyInstanceUID),
                              str(ds.SeriesInstanceUID), parsed.transfer_syntax, item.content_hash, len(data))
    return Outgoing(item, instance, data, blobs.path(item.content_hash))


class Replication:
    """The background service: one worker per peer, woken by every store."""

    def __init__(self, outbox: OutboxStore, blobs: BlobStore, clients: Sequence[PeerClient], policy: Policy) -> None:
        self.outbox = outbox
        self.workers = {c.name: PeerWorker(outbox, blobs, c, policy) for c in clients}

    def wake(self) -> None:
        for worker in self.workers.values():
            worker.wake.set()

    def start(self) -> None:
        for worker in self.workers.values():
            worker.start()

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.stop()

    def retry_failed(self, peer: str) -> int:
        """Put `peer`'s failed rows back to pending, due now; the number of rows."""
        count = self.outbox.retry_failed(peer, utcnow())
        self.wake()
        return count


def held_hashes(instances: list[StoredInstance], blobs: BlobStore) -> dict[str, str]:
    """Content hashes of the given current instances, each read back from the stored bytes,
    not taken from the index alone: an index row whose file is missing or altered confirms
    nothing. The answer a twinpacs peer gives to a confirmation request."""
    held = {}
    for instance in instances:
        try:
            found = parse_part10(blobs.get(instance.content_hash)).content_hash
        except TwinpacsError:
            continue
        if found == instance.content_hash:
            held[instance.sop_instance_uid] = found
    return held
