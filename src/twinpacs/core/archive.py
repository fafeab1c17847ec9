"""The archive's use cases: store, find, retrieve, conflicts, figures. Protocol doors call
these and nothing else; this module knows nothing of DIMSE, HTTP or SQL."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from ..errors import InvalidInput, NotFound, SiteNotActive, TwinpacsError
from ..ports import BlobStore, Index, IndexTransaction
from .corrected import Correction, correct_head, corrected
from .model import InstanceRecord, StoredInstance
from .parsing import parse_part10
from .query import Query

log = logging.getLogger(__name__)

# The mark of `twinpacs selftest`'s objects: the only objects twinpacs ever removes.
SELFTEST_PATIENT_ID = "TWINPACS-SELFTEST"


class StoreStatus(str, Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"  # identical content already held: nothing written (G2)
    CONFLICT = "conflict"  # same SOP Instance UID, other content: both kept, listed


@dataclass(frozen=True)
class StoreResult:
    status: StoreStatus
    sop_instance_uid: str
    sop_class_uid: str
    content_hash: str
    bytes_received: int
    bytes_written: int
    study_uid: str
    series_uid: str
    patient_id: str

    @property
    def message(self) -> str:
        if self.status is StoreStatus.CONFLICT:
            return (f"SOP Instance {self.sop_instance_uid} was already stored with other content; "
                    "both versions are kept and listed for an administrator (twinpacs conflicts)")
        return self.status.value


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class StudyMismatch(InvalidInput):
    """An object sent to a study's URL (STOW-RS) that belongs to another study."""

    dimse_status = 0xA900  # Data Set does not match SOP Class: here, not the study it was sent for


def _record_of(data: bytes) -> InstanceRecord:
    parsed = parse_part10(data)
    return InstanceRecord.from_dataset(parsed.dataset, parsed.transfer_syntax, parsed.content_hash, len(data))


@dataclass
class _Commit:
    """One object of `Archive.store` waiting for its index rows to be committed."""

    record: InstanceRecord
    received: int
    written: int
    source: str
    origin: str | None
    outcome: StoreStatus | BaseException | None = None


def _result(status: StoreStatus, record: InstanceRecord, received: int, written: int) -> StoreResult:
    return StoreResult(status, record.sop_instance_uid, record.attributes["SOPClassUID"], record.content_hash,
                       received, written, record.study_instance_uid, record.series_instance_uid,
                       record.attributes["PatientID"])


class Archive:
    def __init__(
        self,
        blobs: BlobStore,
        index: Index,
        conflict_policy: str = "keep-first",
        peers: list[str] | None = None,
        clock: Callable[[], datetime] = utcnow,
        site_name: str = "",
    ) -> None:
        self.blobs = blobs
        self.index = index
        self.conflict_policy = conflict_policy
        self.peers = peers or []  # replication targets: each store queues one outbox row per peer
        self.clock = clock
        self.site_name = site_name
        self.role = "active"  # set from the index's site state by the composition root
        self.active_site = site_name
        # Called after a store or change has committed (never before: G1), e.g. to wake the
        # replication worker at once instead of at its next poll.
        self.on_change: list[Callable[[], None]] = []
        # Group commit of concurrent stores (see _commit): those waiting, and whether one of
        # their threads is committing.
        self._commits = threading.Condition()
        self._waiting: list[_Commit] = []
        self._committing = False

    # -- store ---------------------------------------------------------------------------

    def store(self, data: bytes, source: str = "", origin: str | None = None) -> StoreResult:
        """Store a Part 10 object durably (G1): the bytes are fsynced before the index
        transaction commits, and only a returned result may be acknowledged to a sender.
        `origin` names the peer an object came from by replication: it is not sent back there,
        and it is accepted on a standby site, which refuses clinical stores. Concurrent calls
        (several associations) share index transactions: see `_commit`."""
        self.ensure_accepting(origin)
        record = _record_of(data)
        # Blob first, index second: a crash between the two leaves an unindexed file that no
        # reader can see. It is not deleted on failure, since an identical concurrent store
        # may already be committing a reference to it. Each caller writes its own file, so
        # the fsyncs of concurrent stores overlap each other and the index commit.
        written = self.blobs.put(record.content_hash, data)
        status = self._commit(_Commit(record, len(data), written, source, origin))
        if status is not StoreStatus.DUPLICATE:
            self._notify()
        return _result(status, record, len(data), written)

    def _commit(self, commit: _Commit) -> StoreStatus:
        """Group commit: the index rows of every store waiting go in one transaction (one
        fsync of the database instead of one per object). No store waits for company: when
        nobody is committing, the caller commits what is waiting (at least its own object)
        at once; otherwise it waits, and either finds its object committed by that batch or
        commits the next batch itself. Returns once the caller's own rows are durable."""
        with self._commits:
            self._waiting.append(commit)
            while commit.outcome is None and self._committing:
                self._commits.wait()
            batch: list[_Commit] = []
            if commit.outcome is None:
                batch, self._waiting, self._committing = self._waiting, [], True
        if batch:
            try:
                self._commit_batch(batch)
            except BaseException as exc:  # an interrupt, say: nobody of the batch waits forever
                for waiting in batch:
                    if waiting.outcome is None:
                        waiting.outcome = exc
                raise
            finally:
                with self._commits:
                    self._committing = False
                    self._commits.notify_all()
        if isinstance(commit.outcome, BaseException):
            raise commit.outcome
        assert commit.outcome is not None
        return commit.outcome

    def _commit_batch(self, batch: list[_Commit]) -> None:
        """Each object's outcome: its status, or the error that refused it. A batch the index
        cannot commit as one is committed object by object, so a bad object fails alone."""
        def record(tx: IndexTransaction, c: _Commit) -> StoreStatus:
            return self._record(tx, c.record, c.source, c.received, c.written, c.origin)

        try:
            statuses = self.index.write(lambda tx: [record(tx, c) for c in batch])
        except Exception as exc:
            if len(batch) == 1:
                batch[0].outcome = exc
                return
            log.warning("a group commit of %d objects is retried one by one", len(batch), exc_info=True)
            for c in batch:
                try:
                    c.outcome = self.index.write(lambda tx, c=c: record(tx, c))
                except Exception as alone:
                    c.outcome = alone
            return
        for c, status in zip(batch, statuses):
            c.outcome = status

    def store_many(self, datas: Sequence[bytes], source: str = "", origin: str | None = None,
                   study: str = "") -> list[StoreResult | Exception]:
        """Store several objects (a STOW-RS request) as `store` does, each with its own result
        or error, but their files written in parallel and their index rows in one transaction:
        one commit instead of one per object, durable (G1) before any result is returned.
        `study`, when given, is the study every object must belong to. If the batch cannot be
        committed as one, each object is stored on its own, so one bad object fails alone."""
        self.ensure_accepting(origin)
        outcomes: list[StoreResult | Exception | InstanceRecord] = []
        for data in datas:
            try:
                record = _record_of(data)
                if study and record.study_instance_uid != study:
                    raise StudyMismatch(f"the instance belongs to study {record.study_instance_uid}, not to {study}")
                outcomes.append(record)
            except TwinpacsError as exc:
                outcomes.append(exc)
        batch = [(n, r) for n, r in enumerate(outcomes) if isinstance(r, InstanceRecord)]
        try:
            written = self.blobs.put_many([(r.content_hash, datas[n]) for n, r in batch])
            statuses = self.index.write(lambda tx: [
                self._record(tx, r, source, len(datas[n]), w, origin) for (n, r), w in zip(batch, written)])
        except Exception:
            log.warning("a batch of %d objects from %s is stored one by one", len(batch), source, exc_info=True)
            for n, _ in batch:
                outcomes[n] = self._store_alone(datas[n], source, origin)
        else:
            for (n, r), w, status in zip(batch, written, statuses):
                outcomes[n] = _result(status, r, len(datas[n]), w)
            if any(status is not StoreStatus.DUPLICATE for status in statuses):
                self._notify()
        return [o for o in outcomes if not isinstance(o, InstanceRecord)]

    def _store_alone(self, data: bytes, source: str, origin: str | None) -> StoreResult | Exception:
        try:
            return self.store(data, source, origin)
        except Exception as exc:  # the caller reports it for this object; the others go on
            if not isinstance(exc, TwinpacsError):
                log.exception("an object from %s could not be stored", source)
            return exc

    def ensure_accepting(self, origin: str | None = None) -> None:
        """A standby site refuses clinical stores, naming the active site; replication is taken."""
        if origin is None and self.role != "active":
            # The active site's name comes first: a DIMSE ErrorComment is cut at 64 characters.
            raise SiteNotActive(f"send to the active site {self.active_site or '(unknown)'}: "
                                f"this site ({self.site_name}) is on standby")

    def _record(self, tx: IndexTransaction, record: InstanceRecord, source: str, received: int, written: int,
                origin: str | None) -> StoreStatus:
        now = self.clock()
        counts = {"bytes_received": received, "bytes_written": written}
        current = tx.current_hash(record.sop_instance_uid)
        if current == record.content_hash:
            tx.add_to_counters({**counts, "duplicates": 1})
            return StoreStatus.DUPLICATE
        if current is None:
            tx.insert_instance(record, source, now)
            self._changed(tx, "stored", record, now, origin)
            tx.add_to_counters({**counts, "instances_stored": 1})
            return StoreStatus.STORED
        tx.add_to_counters({**counts, "conflicts": 1})
        new_version = {"content_hash": record.content_hash, "transfer_syntax": record.transfer_syntax,
                       "size": record.size, "received_at": now, "source": source[:128]}
        if self.conflict_policy == "newer-wins":
            tx.add_version(record.sop_instance_uid, tx.current_version(record.sop_instance_uid), "open")
            tx.replace_current(record, source, now)
            self._changed(tx, "replaced", record, now, origin)
        else:
            tx.add_version(record.sop_instance_uid, new_version, "open")
        log.warning("conflicting version of %s from %s kept (%s)", record.sop_instance_uid, source, self.conflict_policy)
        return StoreStatus.CONFLICT

    def _changed(self, tx: IndexTransaction, kind: str, record: InstanceRecord, now: datetime,
                 origin: str | None = None) -> None:
        seq = tx.log_change(kind, record, now)
        # The origin already holds what it sent: its row starts confirmed, so sync status
        # counts every object held here, and nothing is sent back.
        tx.enqueue(seq, self.peers, record, now, already_at=origin)

    # -- find and retrieve -----------------------------------------------------------------

    def find(self, query: Query) -> list[dict[str, str]]:
        return self.index.query(query)

    def instances(self, study: str = "", series: str = "", sop: str = "") -> list[StoredInstance]:
        """Current versions under the given UIDs; NotFound when nothing matches."""
        uids = {"StudyInstanceUID": study, "SeriesInstanceUID": series, "SOPInstanceUID": sop}
        if not any(uids.values()):
            raise InvalidInput("a retrieval needs at least one of Study, Series or SOP Instance UID")
        found = self.index.stored_instances({k: v for k, v in uids.items() if v})
        if not found:
            raise NotFound("no stored instance matches " + ", ".join(f"{k}={v}" for k, v in uids.items() if v))
        return found

    def read(self, instance: StoredInstance) -> bytes:
        return self.blobs.get(instance.content_hash)

    def path(self, instance: StoredInstance) -> Path | None:
        return self.blobs.path(instance.content_hash)

    # -- what a client retrieves: the stored object with its study's corrections -----------

    def corrections(self, instances: Iterable[StoredInstance]) -> dict[str, dict[str, str]]:
        """The corrected attributes (reconciliation, A40 merges) of each study among
        `instances` that has any: one index look-up per study, made once per retrieval."""
        found = {}
        for study in dict.fromkeys(i.study_instance_uid for i in instances):
            if values := self.index.study_overrides(study):
                found[study] = values
        return found

    def read_for_client(self, instance: StoredInstance, values: dict[str, str]) -> bytes:
        """The object as a client gets it: stored bytes with `values` in place (G2: the stored
        file is not touched). Replication sends the stored bytes instead (read)."""
        data = self.read(instance)
        return corrected(data, values) if values else data

    def corrected_head(self, instance: StoredInstance, values: dict[str, str]) -> Correction:
        """How the corrected object begins; the stored object's bytes from `resume` on follow
        unchanged, so a sender streams them from the file (reading only its header here)."""
        path = self.path(instance)
        if path is None:
            return correct_head(io.BytesIO(self.read(instance)), values)
        with open(path, "rb") as stored:
            return correct_head(stored, values)

    # -- conflicts and figures ---------------------------------------------------------------

    def conflicts(self, state: str | None = "open") -> list[dict[str, Any]]:
        return self.index.versions(state)

    def resolve_conflict(self, version_id: int, keep: str) -> None:
        """keep='current': the current version stays. keep='version': that version becomes
        current and the previous current is retained as a resolved version. Nothing is deleted."""
        version = self.index.version(version_id)
        if version is None or version["state"] != "open":
            raise NotFound(f"no open conflict with id {version_id}")
        if keep == "current":
            self.index.resolve_version(version_id, "kept current version")
            return
        if keep != "version":
            raise InvalidInput("keep must be 'current' or 'version'")
        data = self.blobs.get(version["content_hash"])
        parsed = parse_part10(data)
        record = InstanceRecord.from_dataset(parsed.dataset, parsed.transfer_syntax, parsed.content_hash, len(data))

        def swap(tx: IndexTransaction) -> None:
            now = self.clock()
            tx.add_version(record.sop_instance_uid, tx.current_version(record.sop_instance_uid), "resolved")
            tx.replace_current(record, version["source"], now)
            self._changed(tx, "replaced", record, now)

        self.index.write(swap)
        self._notify()
        self.index.resolve_version(version_id, "made current")

    # -- removal of self-test objects -----------------------------------------------------

    def remove_selftest_study(self, study_uid: str) -> dict[str, Any]:
        """Remove a study `twinpacs selftest` stored: index rows first, then the files no index
        row references any more. Refused, nothing removed, unless every object in it is marked."""
        removed = self.index.remove_study(  # type: ignore[attr-defined]
            study_uid, SELFTEST_PATIENT_ID, self.clock(), self._is_selftest_object)
        for content_hash in removed.unreferenced:
            self.blobs.delete(content_hash)
        return {**removed.as_dict(), "files_deleted": len(removed.unreferenced)}

    def _is_selftest_object(self, content_hash: str) -> bool:
        try:
            data = self.blobs.get(content_hash)
        except NotFound:
            return True  # no stored object to contradict the index's marked patient
        return str(parse_part10(data).dataset.get("PatientID", "")) == SELFTEST_PATIENT_ID

    def _notify(self) -> None:
        for listener in self.on_change:
            listener()

    def figures(self) -> dict[str, Any]:
        """Counts and G2's write amplification: bytes written per byte received."""
        counters = self.index.counters()
        received = counters.get("bytes_received", 0)
        written = counters.get("bytes_written", 0)
        return {
            **self.index.counts(),
            "bytes_received": received,
            "bytes_written": written,
            "bytes_written_per_byte_received": round(written / received, 6) if received else 0.0,
            "duplicates_received": counters.get("duplicates", 0),
            "conflicts_received": counters.get("conflicts", 0),
            "open_conflicts": len(self.index.versions("open")),
        }
