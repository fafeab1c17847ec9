"""Write operations, each a step inside one unit of work (see Database.write)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, func, insert, literal, select, update
from sqlalchemy.engine import Connection

from ..core.model import INSTANCE_KEYS, PATIENT_KEYS, SERIES_KEYS, STUDY_KEYS, InstanceRecord
from ..core.ris import OrderStatus, Priority
from .schema import (
    changes,
    counters,
    instance_versions,
    instances,
    orders,
    outbox,
    patients,
    series,
    studies,
    study_overrides,
)
from .prepared import Prepared


def _binds(*columns: str) -> dict[str, Any]:
    """Insert values: each column's from the parameter of its name."""
    return {column: bindparam(column) for column in columns}


# The store path's statements are built once: building and cache-keying a fresh SQLAlchemy
# statement per execution cost more than executing it (profiled: ~3 ms of a 10 ms store). The
# ones every store runs are Prepared (index/prepared.py): compiled once, run on the DBAPI cursor.
_CURRENT_HASH = Prepared(select(instances.c.content_hash).where(instances.c.SOPInstanceUID == bindparam("uid")))
# The patient, study and series keys in one round trip. An existing study keeps its patient:
# after a merge or a reconciliation, a late instance still carrying the old patient ID in its
# file joins the study where it is, under the corrected patient.
_PARENT_PKS = Prepared(select(
    func.coalesce(
        select(studies.c.patient_pk).where(studies.c.StudyInstanceUID == bindparam("study")).scalar_subquery(),
        select(patients.c.id).where((patients.c.PatientID == bindparam("pid"))
                                    & (patients.c.IssuerOfPatientID == bindparam("issuer"))).scalar_subquery()),
    select(studies.c.id).where(studies.c.StudyInstanceUID == bindparam("study")).scalar_subquery(),
    select(series.c.id).where(series.c.SeriesInstanceUID == bindparam("series")).scalar_subquery(),
))
# A study's corrections can arrive from a peer site before its images (core/ris_sync.py): the
# study is then filed under the corrected identity when its first instance creates it.
_CORRECTED = select(study_overrides.c.attributes).where(study_overrides.c.StudyInstanceUID == bindparam("study"))
_PATIENT_PK = select(patients.c.id).where((patients.c.PatientID == bindparam("pid"))
                                          & (patients.c.IssuerOfPatientID == bindparam("issuer")))
_INSERT = {table.name: insert(table) for table in (patients, studies, series)}
# Every column but the key, each from the parameter of its name: a value missing is an error.
_INSERT_INSTANCE = Prepared(insert(instances).values(**_binds(*(c.key for c in instances.c if c.key != "id"))))
_BUMP_SERIES = Prepared(update(series).where(series.c.id == bindparam("pk")).values(
    num_instances=series.c.num_instances + 1))
_BUMP = {
    table.name: Prepared(update(table).where(table.c.id == bindparam("pk")).values(
        num_instances=table.c.num_instances + 1,
        num_series=table.c.num_series + bindparam("d_series"),
        **({"num_studies": table.c.num_studies + bindparam("d_studies")} if table is patients else {}),
    ))
    for table in (studies, patients)
}
_INSERT_CHANGE = Prepared(insert(changes).values(
    **_binds("kind", "SOPInstanceUID", "StudyInstanceUID", "content_hash", "at")).returning(changes.c.seq))
# An object's replication priority is its order's (STAT first), looked up inside the insert:
# no extra round trip on the store path, 0 when no live order has its accession number.
_ORDER_RANK = select(case({p.value: p.rank for p in Priority}, value=orders.c.priority, else_=0)).where(
    orders.c.accession_number == bindparam("accession"), orders.c.status != OrderStatus.CANCELLED.value,
).scalar_subquery()
_INSERT_OUTBOX = Prepared(insert(outbox).values(
    **_binds("change_seq", "peer", "SOPInstanceUID", "content_hash", "created_at", "next_attempt_at", "state"),
    priority=func.coalesce(_ORDER_RANK, 0)))
_COUNTERS: dict[tuple[str, ...], Prepared] = {}


def _counters_update(names: tuple[str, ...]) -> Prepared:
    statement = _COUNTERS.get(names)
    if statement is None:
        delta = case({name: bindparam(f"d{i}") for i, name in enumerate(names)}, value=counters.c.name)
        # IN (?, ?, ...) of the names as they are, not an expanding list: rendered once.
        statement = _COUNTERS[names] = Prepared(
            update(counters).where(counters.c.name.in_([literal(name) for name in names]))
            .values(value=counters.c.value + delta).returning(counters.c.name)
        )
    return statement


class IndexTransaction:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def current_hash(self, sop_instance_uid: str) -> str | None:
        rows = _CURRENT_HASH.rows(self.conn, {"uid": sop_instance_uid})
        return rows[0][0] if rows else None

    def insert_instance(self, record: InstanceRecord, source: str, at: datetime) -> None:
        """Insert a new instance with its patient, study and series, keeping the counters."""
        a = record.attributes
        [(patient_pk, study_pk, series_pk)] = _PARENT_PKS.rows(self.conn, {
            "pid": a["PatientID"], "issuer": a["IssuerOfPatientID"],
            "study": a["StudyInstanceUID"], "series": a["SeriesInstanceUID"],
        })
        new_study = study_pk is None
        if new_study:
            corrected = self.conn.execute(_CORRECTED, {"study": a["StudyInstanceUID"]}).scalar()
            if corrected:
                a = {**a, **json.loads(corrected)}
                patient_pk = self.conn.execute(_PATIENT_PK, {"pid": a["PatientID"],
                                                             "issuer": a["IssuerOfPatientID"]}).scalar()
        # A concurrent writer inserting the same row raises IntegrityError: Database.write retries.
        if patient_pk is None:
            patient_pk = self._create(patients, {k: a[k] for k in PATIENT_KEYS})
        if new_study:
            study_pk = self._create(studies, {"patient_pk": patient_pk, **{k: a[k] for k in STUDY_KEYS}})
        new_series = series_pk is None
        if new_series:
            series_pk = self._create(series, {"study_pk": study_pk, **{k: a[k] for k in SERIES_KEYS}})
        _INSERT_INSTANCE.rows(self.conn, {
            "series_pk": series_pk, **{k: a[k] for k in INSTANCE_KEYS}, **_version_columns(record, source, at)
        })
        _BUMP_SERIES.rows(self.conn, {"pk": series_pk})
        _BUMP["studies"].rows(self.conn, {"pk": study_pk, "d_series": int(new_series)})
        _BUMP["patients"].rows(self.conn, {"pk": patient_pk, "d_series": int(new_series),
                                           "d_studies": int(new_study)})

    def replace_current(self, record: InstanceRecord, source: str, at: datetime) -> None:
        """Make `record` the current version (the caller has kept the old one as a version)."""
        self.conn.execute(
            update(instances)
            .where(instances.c.SOPInstanceUID == record.sop_instance_uid)
            .values(**_version_columns(record, source, at))
        )

    def current_version(self, sop_instance_uid: str) -> dict[str, Any]:
        row = self.conn.execute(
            select(instances.c.content_hash, instances.c.transfer_syntax, instances.c.size,
                   instances.c.received_at, instances.c.source)
            .where(instances.c.SOPInstanceUID == sop_instance_uid)
        ).one()
        return dict(row._mapping)

    def add_version(self, sop_instance_uid: str, version: dict[str, Any], state: str) -> None:
        self.conn.execute(insert(instance_versions).values(
            SOPInstanceUID=sop_instance_uid, state=state, **version
        ))

    def log_change(self, kind: str, record: InstanceRecord, at: datetime) -> int:
        [(seq,)] = _INSERT_CHANGE.rows(self.conn, dict(
            kind=kind, SOPInstanceUID=record.sop_instance_uid,
            StudyInstanceUID=record.study_instance_uid, content_hash=record.content_hash, at=at,
        ))
        return int(seq)

    def enqueue(self, change_seq: int, peers: list[str], record: InstanceRecord, at: datetime,
                already_at: str | None = None) -> None:
        """The outbox: replication work is queued in the store's own transaction (G1).
        `already_at` (the peer the object came from) gets a row that starts confirmed."""
        for peer in peers:
            _INSERT_OUTBOX.rows(self.conn, dict(
                change_seq=change_seq, peer=peer, SOPInstanceUID=record.sop_instance_uid,
                content_hash=record.content_hash, created_at=at, next_attempt_at=at,
                state="confirmed" if peer == already_at else "pending",
                accession=record.attributes.get("AccessionNumber", ""),
            ))

    def add_to_counters(self, deltas: dict[str, int]) -> None:
        """Several counters in one statement; a counter not yet present is created."""
        names = tuple(sorted(name for name, delta in deltas.items() if delta))
        if not names:
            return
        updated = {name for name, in _counters_update(names).rows(
            self.conn, {f"d{i}": deltas[name] for i, name in enumerate(names)})}
        for name in names:
            if name not in updated:
                # Absent when the update began. If a concurrent transaction has created it since
                # (PostgreSQL: a later statement would see it, the update did not), this insert
                # fails and Database.write runs the whole unit again: no increment is lost.
                self.conn.execute(insert(counters).values(name=name, value=deltas[name]))

    def add_to_counter(self, name: str, delta: int) -> None:
        done = self.conn.execute(
            update(counters).where(counters.c.name == name).values(value=counters.c.value + delta)
        )
        if done.rowcount == 0:
            self.conn.execute(insert(counters).values(name=name, value=delta))

    def _create(self, table: Any, values: dict[str, Any]) -> int:
        result = self.conn.execute(_INSERT[table.name], values)
        return int(result.inserted_primary_key[0])


def _version_columns(record: InstanceRecord, source: str, at: datetime) -> dict[str, Any]:
    return {
        "transfer_syntax": record.transfer_syntax,
        "content_hash": record.content_hash,
        "size": record.size,
        "received_at": at,
        "source": source[:128],
    }
