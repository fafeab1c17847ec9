"""The RIS link's tables (ris_patients, orders) behind core.ris.RisIndex. Portable SQL."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Row

from ..core.ris import Code, MergeRecord, Order, OrderStatus, Patient, Priority
from ..core.ris_sync import ORDER, PATIENT, patient_key
from . import merge
from .database import Database
from .notices import as_utc
from .ris_revisions import mark
from .schema import orders, ris_patients


def order_from_row(row: Row[Any]) -> Order:
    m = row._mapping
    mapped = Code(m["mapped_code"], m["mapped_scheme"], m["mapped_meaning"]) if m["mapped_code"] else None
    return Order(
        id=m["id"], placer_number=m["placer_number"], filler_number=m["filler_number"],
        accession_number=m["accession_number"],
        patient=Patient(m["PatientID"], m["IssuerOfPatientID"], m["PatientName"], m["PatientBirthDate"],
                        m["PatientSex"]),
        procedure=Code(m["procedure_code"], m["procedure_scheme"], m["procedure_text"]),
        mapped_procedure=mapped, modality=m["modality"], body_part=m["body_part"],
        scheduled_at=as_utc(m["scheduled_at"]) if m["scheduled_at"] else None,
        station_ae=m["station_ae"], priority=Priority(m["priority"]),
        referring_physician=m["referring_physician"], reason=m["reason"], clinical_info=m["clinical_info"],
        status=OrderStatus(m["status"]),
    )


def order_columns(order: Order) -> dict[str, Any]:
    mapped = order.mapped_procedure or Code("")
    return {
        "placer_number": order.placer_number, "filler_number": order.filler_number,
        "accession_number": order.accession_number,
        "PatientID": order.patient.patient_id, "IssuerOfPatientID": order.patient.issuer,
        "PatientName": order.patient.name, "PatientBirthDate": order.patient.birth_date,
        "PatientSex": order.patient.sex,
        "procedure_code": order.procedure.value, "procedure_scheme": order.procedure.scheme,
        "procedure_text": order.procedure.meaning,
        "mapped_code": mapped.value, "mapped_scheme": mapped.scheme, "mapped_meaning": mapped.meaning,
        "modality": order.modality, "body_part": order.body_part,
        # UTC on the way in: SQLite keeps no offset, and reads a stored time back as UTC.
        "scheduled_at": order.scheduled_at.astimezone(timezone.utc) if order.scheduled_at else None,
        "station_ae": order.station_ae, "priority": order.priority.value,
        "referring_physician": order.referring_physician, "reason": order.reason,
        "clinical_info": order.clinical_info, "status": order.status.value,
    }


class SqlRis:
    def __init__(self, db: Database) -> None:
        self.db = db

    def upsert_patient(self, patient: Patient, at: datetime) -> None:
        values = {"PatientName": patient.name, "PatientBirthDate": patient.birth_date,
                  "PatientSex": patient.sex, "updated_at": at}

        def work(conn: Connection) -> None:
            mark(conn, PATIENT, patient_key(patient.patient_id, patient.issuer), at)  # first: see ris_revisions
            done = conn.execute(update(ris_patients).where(
                ris_patients.c.PatientID == patient.patient_id,
                ris_patients.c.IssuerOfPatientID == patient.issuer).values(**values))
            if done.rowcount == 0:
                conn.execute(insert(ris_patients).values(
                    PatientID=patient.patient_id, IssuerOfPatientID=patient.issuer, **values))
        self.db.write(work)

    def patient(self, patient_id: str, issuer: str) -> Patient | None:
        with self.db.read() as conn:
            row = conn.execute(select(ris_patients).where(
                ris_patients.c.PatientID == patient_id, ris_patients.c.IssuerOfPatientID == issuer)).first()
        if row is None:
            return None
        m = row._mapping
        return Patient(m["PatientID"], m["IssuerOfPatientID"], m["PatientName"], m["PatientBirthDate"], m["PatientSex"])

    def order_by_placer(self, placer_number: str) -> Order | None:
        return self._one(orders.c.placer_number == placer_number)

    def order_by_accession(self, accession_number: str) -> Order | None:
        return self._one(orders.c.accession_number == accession_number)

    def order_by_id(self, order_id: int) -> Order | None:
        return self._one(orders.c.id == order_id)

    def _one(self, condition: Any) -> Order | None:
        with self.db.read() as conn:
            row = conn.execute(select(orders).where(condition)).first()
        return order_from_row(row) if row else None

    def save_order(self, order: Order, at: datetime) -> Order:
        columns = {**order_columns(order), "updated_at": at}

        def work(conn: Connection) -> int:
            mark(conn, ORDER, order.placer_number, at)  # first: see ris_revisions
            if order.id:
                conn.execute(update(orders).where(orders.c.id == order.id).values(**columns))
                return order.id
            result = conn.execute(insert(orders).values(**columns, created_at=at))
            return int(result.inserted_primary_key[0])  # type: ignore[index]
        order_id = self.db.write(work)
        saved = self.order_by_id(order_id)
        assert saved is not None
        return saved

    def orders(self, status: str | None = None, patient_id: str | None = None, modality: str | None = None,
               station_ae: str | None = None, accession_number: str | None = None,
               scheduled_from: datetime | None = None, scheduled_to: datetime | None = None,
               limit: int = 1000) -> list[Order]:
        """Orders matching every filter given, by scheduled time (unscheduled last), then id."""
        statement = select(orders)
        for column, value in ((orders.c.status, status), (orders.c.PatientID, patient_id),
                              (orders.c.modality, modality), (orders.c.station_ae, station_ae),
                              (orders.c.accession_number, accession_number)):
            if value is not None:
                statement = statement.where(column == value)
        if scheduled_from is not None:
            statement = statement.where(orders.c.scheduled_at >= scheduled_from)
        if scheduled_to is not None:
            statement = statement.where(orders.c.scheduled_at <= scheduled_to)
        statement = statement.order_by(orders.c.scheduled_at.is_(None), orders.c.scheduled_at, orders.c.id).limit(limit)
        with self.db.read() as conn:
            return [order_from_row(r) for r in conn.execute(statement)]

    def merge_patients(self, surviving: Patient, prior_id: str, prior_issuer: str, at: datetime,
                       message_id: str) -> MergeRecord:
        return self.db.write(lambda conn: merge.merge_patients(conn, surviving, prior_id, prior_issuer, at, message_id))

    def reverse_merge(self, merge_id: int, at: datetime, actor: str) -> MergeRecord:
        return self.db.write(lambda conn: merge.reverse_merge(conn, merge_id, at, actor))
