"""The RIS state's replication in SQL (core/ris_sync.py): what a twinpacs peer has not confirmed
yet, as changes to send; each peer's confirmed revision; and a peer's changes applied here, in
one transaction per request, with their origin recorded so they are never sent back to it.

A received study correction is applied as index/corrections.py applies one here: the study's
index rows move under the corrected identity, the counters follow, the override row becomes
the origin's exactly. A study not held yet keeps only the override row; its first instance
then files the study under the corrected identity (index/transaction.py)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from ..core.ris_sync import (
    APPLIED,
    ORDER,
    PATIENT,
    PATIENT_FIELDS,
    STUDY,
    Batch,
    RisChange,
    decide,
    order_data,
    order_from_data,
)
from ..errors import InvalidInput
from .corrections import correct_study, override_row, set_override_row, study_row
from .database import Database
from .notices import as_utc
from .ris import order_columns, order_from_row
from .ris_revisions import COUNTER, lock_revisions, mark, version
from .schema import counters, orders, ris_patients, ris_peers, ris_versions


def _unconfirmed(peer: str, confirmed: Any) -> Any:
    return (ris_versions.c.revision > confirmed) & (ris_versions.c.origin != peer)


def _confirmed(conn: Connection, peer: str) -> int:
    value = conn.execute(select(ris_peers.c.confirmed_revision).where(ris_peers.c.peer == peer)).scalar()
    return int(value or 0)


def _confirmed_of(peer: str) -> Any:
    return func.coalesce(select(ris_peers.c.confirmed_revision).where(ris_peers.c.peer == peer).scalar_subquery(), 0)


class SqlRisSync:
    def __init__(self, db: Database, site_name: str) -> None:
        self.db = db
        self.site_name = site_name

    # -- sending ---------------------------------------------------------------------------

    def outgoing(self, peer: str, limit: int) -> Batch:
        """The oldest `limit` rows the peer lacks, each as its current state. The counter is
        read first: every revision up to it is committed (ris_revisions), so `upto` may pass
        rows that came from the peer and were skipped."""
        with self.db.read() as conn:
            top = int(conn.execute(select(counters.c.value).where(counters.c.name == COUNTER)).scalar() or 0)
            confirmed = _confirmed(conn, peer)
            rows = conn.execute(select(ris_versions).where(_unconfirmed(peer, confirmed))
                                .order_by(ris_versions.c.revision).limit(limit)).all()
            changes = [RisChange(r.kind, r.row_key, r.origin or self.site_name, int(r.origin_revision),
                                 _state(conn, r.kind, r.row_key)) for r in rows]
        last = int(rows[-1].revision) if rows else 0
        upto = last if len(rows) == limit else max(top, last, confirmed)
        return Batch(changes, upto, confirmed)

    def confirm(self, peer: str, upto: int, at: datetime) -> None:
        """The peer holds everything up to `upto`; a confirmed revision never goes back (two
        nodes on one database may send the same batch)."""
        def work(conn: Connection) -> None:
            done = conn.execute(update(ris_peers).where(ris_peers.c.peer == peer).values(
                confirmed_revision=func.max(ris_peers.c.confirmed_revision, upto) if self.db.is_sqlite
                else func.greatest(ris_peers.c.confirmed_revision, upto), last_error="", updated_at=at))
            if done.rowcount == 0:
                conn.execute(insert(ris_peers).values(peer=peer, confirmed_revision=upto, updated_at=at))
        self.db.write(work)

    def failed(self, peer: str, error: str, at: datetime) -> None:
        def work(conn: Connection) -> None:
            done = conn.execute(update(ris_peers).where(ris_peers.c.peer == peer)
                                .values(last_error=error, updated_at=at))
            if done.rowcount == 0:
                conn.execute(insert(ris_peers).values(peer=peer, confirmed_revision=0, last_error=error,
                                                      updated_at=at))
        self.db.write(work)

    # -- what a peer lacks (sync status, failover gate) -----------------------------------------

    def pending(self, peer: str) -> int:
        """Exactly how many rows (orders, RIS patients, study corrections) changed here since
        the peer last confirmed, not counting those that came from it."""
        with self.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(ris_versions)
                                    .where(_unconfirmed(peer, _confirmed_of(peer)))).scalar_one())

    def pending_rows(self, peer: str) -> list[dict[str, Any]]:
        """Each of them, oldest first: kind, key (placer number, patient, Study Instance UID)."""
        with self.db.read() as conn:
            rows = conn.execute(select(ris_versions.c.kind, ris_versions.c.row_key, ris_versions.c.updated_at)
                                .where(_unconfirmed(peer, _confirmed_of(peer))).order_by(ris_versions.c.revision))
            return [{"kind": r.kind, "key": r.row_key, "changed_at": _iso(r.updated_at)} for r in rows]

    def last_error(self, peer: str) -> str:
        with self.db.read() as conn:
            return str(conn.execute(select(ris_peers.c.last_error).where(ris_peers.c.peer == peer)).scalar() or "")

    # -- receiving -------------------------------------------------------------------------

    def apply(self, changes: Sequence[RisChange], here_active: bool, at: datetime) -> list[str]:
        """Apply a peer's changes in one transaction (all or nothing); what was done with each."""
        def work(conn: Connection) -> list[str]:
            lock_revisions(conn)  # before any row's lock: see ris_revisions
            results = []
            for change in changes:
                result = decide(version(conn, change.kind, change.key), change, self.site_name, here_active)
                if result == APPLIED:
                    _APPLY[change.kind](conn, change, at)
                    mark(conn, change.kind, change.key, at, change.origin, change.revision)
                results.append(result)
            return results
        return self.db.write(work)


class RisPeersStatus:
    """What sync status and the failover gate ask (core.failover.RisSyncSource): a peer that is
    not a twinpacs site gets no RIS state, so it lacks none."""

    def __init__(self, sync: SqlRisSync, twinpacs_peers: Collection[str]) -> None:
        self.sync = sync
        self.twinpacs_peers = set(twinpacs_peers)

    def pending(self, peer: str) -> int:
        return self.sync.pending(peer) if peer in self.twinpacs_peers else 0

    def pending_rows(self, peer: str) -> list[dict[str, Any]]:
        return self.sync.pending_rows(peer) if peer in self.twinpacs_peers else []


def _iso(value: datetime) -> str:
    at = as_utc(value)
    assert at is not None  # the column is NOT NULL
    return at.isoformat()


def _state(conn: Connection, kind: str, key: str) -> dict[str, Any] | None:
    if kind == ORDER:
        row = conn.execute(select(orders).where(orders.c.placer_number == key)).first()
        return order_data(order_from_row(row)) if row else None
    if kind == PATIENT:
        patient_id, _, issuer = key.partition("\\")
        row = conn.execute(select(*[ris_patients.c[k] for k in PATIENT_FIELDS]).where(
            ris_patients.c.PatientID == patient_id, ris_patients.c.IssuerOfPatientID == issuer)).first()
        return {k: str(row._mapping[k]) for k in PATIENT_FIELDS} if row else None
    return override_row(conn, key)


def _apply_order(conn: Connection, change: RisChange, at: datetime) -> None:
    assert change.data is not None  # parse_changes checked it
    order = order_from_data(change.data)
    clash = conn.execute(select(orders.c.placer_number).where(
        orders.c.accession_number == order.accession_number, orders.c.placer_number != order.placer_number)).scalar()
    if clash is not None:
        raise InvalidInput(f"order {order.placer_number}: accession number {order.accession_number} belongs to "
                           f"order {clash} here")
    columns = {**order_columns(order), "updated_at": at}
    done = conn.execute(update(orders).where(orders.c.placer_number == order.placer_number).values(**columns))
    if done.rowcount == 0:
        conn.execute(insert(orders).values(**columns, created_at=at))


def _apply_patient(conn: Connection, change: RisChange, at: datetime) -> None:
    assert change.data is not None
    values = {k: change.data[k] for k in PATIENT_FIELDS}
    done = conn.execute(update(ris_patients).where(
        ris_patients.c.PatientID == values["PatientID"],
        ris_patients.c.IssuerOfPatientID == values["IssuerOfPatientID"]).values(**values, updated_at=at))
    if done.rowcount == 0:
        conn.execute(insert(ris_patients).values(**values, updated_at=at))


def _apply_study(conn: Connection, change: RisChange, at: datetime) -> None:
    """The study takes the origin's corrections: attributes the origin no longer corrects go back
    to their values before the first correction, as this site recorded them."""
    uid, incoming = change.key, change.data
    if study_row(conn, uid) is not None:
        held = override_row(conn, uid) or {"attributes": {}, "original": {}}
        values = {k: held["original"][k] for k in held["attributes"]}
        values.update(incoming["attributes"] if incoming else {})
        if values:
            correct_study(conn, uid, values, at)
    set_override_row(conn, uid, incoming, at)  # exactly the origin's row


_APPLY = {ORDER: _apply_order, PATIENT: _apply_patient, STUDY: _apply_study}
