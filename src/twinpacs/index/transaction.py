"""Write operations, each a step inside one unit of work (see Database.write)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from ..core.model import INSTANCE_KEYS, PATIENT_KEYS, SERIES_KEYS, STUDY_KEYS, InstanceRecord
from .schema import changes, counters, instance_versions, instances, outbox, patients, series, studies


class IndexTransaction:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def current_hash(self, sop_instance_uid: str) -> str | None:
        row = self.conn.execute(
            select(instances.c.content_hash).where(instances.c.SOPInstanceUID == sop_instance_uid)
        ).first()
        return row[0] if row else None

    def insert_instance(self, record: InstanceRecord, source: str, at: datetime) -> None:
        """Insert a new instance with its patient, study and series, keeping the counters."""
        a = record.attributes
        patient_pk, _ = self._get_or_create(
            patients,
            (patients.c.PatientID == a["PatientID"]) & (patients.c.IssuerOfPatientID == a["IssuerOfPatientID"]),
            {k: a[k] for k in PATIENT_KEYS},
        )
        study_pk, new_study = self._get_or_create(
            studies, studies.c.StudyInstanceUID == a["StudyInstanceUID"],
            {"patient_pk": patient_pk, **{k: a[k] for k in STUDY_KEYS}},
        )
        series_pk, new_series = self._get_or_create(
            series, series.c.SeriesInstanceUID == a["SeriesInstanceUID"],
            {"study_pk": study_pk, **{k: a[k] for k in SERIES_KEYS}},
        )
        self.conn.execute(insert(instances).values(
            series_pk=series_pk, **{k: a[k] for k in INSTANCE_KEYS}, **_version_columns(record, source, at)
        ))
        self._bump(series, series_pk, num_instances=1)
        self._bump(studies, study_pk, num_instances=1, num_series=int(new_series))
        self._bump(patients, patient_pk, num_instances=1, num_series=int(new_series), num_studies=int(new_study))

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
        result = self.conn.execute(insert(changes).values(
            kind=kind, SOPInstanceUID=record.sop_instance_uid,
            StudyInstanceUID=record.study_instance_uid, content_hash=record.content_hash, at=at,
        ))
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def enqueue(self, change_seq: int, peers: list[str], record: InstanceRecord, at: datetime,
                already_at: str | None = None) -> None:
        """The outbox: replication work is queued in the store's own transaction (G1).
        `already_at` (the peer the object came from) gets a row that starts confirmed."""
        for peer in peers:
            self.conn.execute(insert(outbox).values(
                change_seq=change_seq, peer=peer, SOPInstanceUID=record.sop_instance_uid,
                content_hash=record.content_hash, created_at=at, next_attempt_at=at,
                state="confirmed" if peer == already_at else "pending",
            ))

    def add_to_counter(self, name: str, delta: int) -> None:
        done = self.conn.execute(
            update(counters).where(counters.c.name == name).values(value=counters.c.value + delta)
        )
        if done.rowcount == 0:
            self.conn.execute(insert(counters).values(name=name, value=delta))

    def _get_or_create(self, table: Any, where: Any, values: dict[str, Any]) -> tuple[int, bool]:
        row = self.conn.execute(select(table.c.id).where(where)).first()
        if row:
            return int(row[0]), False
        # A concurrent writer inserting the same row raises IntegrityError: Database.write retries.
        result = self.conn.execute(insert(table).values(**values))
        return int(result.inserted_primary_key[0]), True

    def _bump(self, table: Any, pk: int, **deltas: int) -> None:
        self.conn.execute(
            update(table).where(table.c.id == pk)
            .values(**{name: table.c[name] + delta for name, delta in deltas.items() if delta})
        )


def _version_columns(record: InstanceRecord, source: str, at: datetime) -> dict[str, Any]:
    return {
        "transfer_syntax": record.transfer_syntax,
        "content_hash": record.content_hash,
        "size": record.size,
        "received_at": at,
        "source": source[:128],
    }
