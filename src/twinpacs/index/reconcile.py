"""The queries behind the reconciliation list and its corrections (core.reconcile.ReconcileStore).

A study is linked to the order whose accession_number is its AccessionNumber (an order's is
never empty, so an empty one links to nothing). The candidate queries compare raw values;
core/reconcile.py decides what really differs (case and padding of names, missing values)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.engine import Connection, Row

from ..core.model import PATIENT_KEYS
from ..core.reconcile import LinkedStudy, MergeListing, StudySummary
from ..core.ris import MergeRecord, Order, OrderStatus, Patient
from . import merge
from .corrections import Changes, correct_study, log_action
from .database import Database
from .ris import SqlRis, order_from_row
from .schema import orders, patients, ris_patients, series, studies

_STUDY_COLUMNS = (studies.c.id, studies.c.StudyInstanceUID, studies.c.AccessionNumber, studies.c.StudyDate,
                  studies.c.StudyDescription, *[patients.c[k] for k in PATIENT_KEYS])


def _studies() -> Select[Any]:
    return select(*_STUDY_COLUMNS).select_from(studies.join(patients, studies.c.patient_pk == patients.c.id))


def _summary(row: Row[Any], modalities: dict[int, str]) -> StudySummary:
    m = row._mapping
    return StudySummary(m["StudyInstanceUID"], Patient(m["PatientID"], m["IssuerOfPatientID"], m["PatientName"],
                                                       m["PatientBirthDate"], m["PatientSex"]),
                        m["AccessionNumber"], m["StudyDate"], m["StudyDescription"], modalities.get(m["id"], ""))


def _modalities(conn: Connection, study_pks: list[int]) -> dict[int, str]:
    found: dict[int, list[str]] = defaultdict(list)
    if study_pks:
        statement = (select(series.c.study_pk, series.c.Modality).distinct()
                     .where(series.c.study_pk.in_(study_pks)).order_by(series.c.Modality))
        for pk, modality in conn.execute(statement):
            if modality:
                found[pk].append(modality)
    return {pk: "\\".join(values) for pk, values in found.items()}


class SqlReconcileStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def unlinked_studies(self, limit: int) -> tuple[list[StudySummary], int]:
        """Studies no order's accession names, newest first, and how many there are in all."""
        unlinked = orders.c.id.is_(None)
        joined = studies.join(orders, orders.c.accession_number == studies.c.AccessionNumber, isouter=True)
        with self.db.read() as conn:
            rows = conn.execute(select(*_STUDY_COLUMNS).select_from(
                joined.join(patients, studies.c.patient_pk == patients.c.id))
                .where(unlinked).order_by(studies.c.id.desc()).limit(limit)).all()
            total = conn.execute(select(func.count()).select_from(joined).where(unlinked)).scalar_one()
            modalities = _modalities(conn, [r.id for r in rows])
        return [_summary(r, modalities) for r in rows], int(total)

    def mismatch_candidates(self) -> list[LinkedStudy]:
        """Linked studies whose patient attributes differ in any raw value from their order's
        or from the RIS-registered patient's."""
        ris = ris_patients
        differs = [patients.c[k] != orders.c[k] for k in PATIENT_KEYS]
        differs += [and_(ris.c.id.is_not(None), patients.c[k] != ris.c[k])
                    for k in ("PatientName", "PatientBirthDate", "PatientSex")]
        statement = (
            select(*_STUDY_COLUMNS, orders.c.id.label("order_id"), ris.c.id.label("ris_id"), *[ris.c[k].label(f"ris_{k}") for k in PATIENT_KEYS])
            .select_from(studies.join(patients, studies.c.patient_pk == patients.c.id)
                         .join(orders, orders.c.accession_number == studies.c.AccessionNumber)
                         .join(ris, and_(ris.c.PatientID == orders.c.PatientID,
                                         ris.c.IssuerOfPatientID == orders.c.IssuerOfPatientID), isouter=True))
            .where(or_(*differs)).order_by(studies.c.id.desc()))
        with self.db.read() as conn:
            rows = conn.execute(statement).all()
            modalities = _modalities(conn, [r.id for r in rows])
            ids = sorted({r.order_id for r in rows})
            by_id = {o.id: o for o in map(order_from_row, conn.execute(select(orders).where(orders.c.id.in_(ids))))}
        return [LinkedStudy(_summary(r, modalities), by_id[r.order_id], _ris_patient(r)) for r in rows]

    def live_orders_without(self, codes: Iterable[str]) -> list[Order]:
        """Orders not cancelled whose procedure code is none of `codes`, newest first."""
        statement = select(orders).where(orders.c.status != OrderStatus.CANCELLED.value)
        codes = [c for c in codes if c]
        if codes:
            statement = statement.where(orders.c.procedure_code.not_in(codes))
        with self.db.read() as conn:
            return [order_from_row(r) for r in conn.execute(statement.order_by(orders.c.id.desc()))]

    def orders_for_patients(self, patient_ids: Iterable[str]) -> dict[str, list[Order]]:
        ids = sorted(set(patient_ids))
        found: dict[str, list[Order]] = defaultdict(list)
        if ids:
            with self.db.read() as conn:
                for row in conn.execute(select(orders).where(orders.c.PatientID.in_(ids)).order_by(orders.c.id.desc())):
                    order = order_from_row(row)
                    found[order.patient.patient_id].append(order)
        return dict(found)

    def study(self, uid: str) -> StudySummary | None:
        with self.db.read() as conn:
            row = conn.execute(_studies().where(studies.c.StudyInstanceUID == uid)).first()
            return _summary(row, _modalities(conn, [row.id])) if row else None

    def ris_patient(self, patient_id: str, issuer: str) -> Patient | None:
        return SqlRis(self.db).patient(patient_id, issuer)

    def link(self, study_uid: str, values: dict[str, str], at: datetime, actor: str, reason: str,
             details: dict[str, Any]) -> Changes:
        """Correct the study and record it in the operator log, in one transaction; nothing is
        logged when the study already says all of it."""
        def work(conn: Connection) -> Changes:
            changes = correct_study(conn, study_uid, values, at)
            if changes:
                log_action(conn, at, actor, "reconcile.apply", reason,
                           {"study": study_uid, **details, "changes": changes})
            return changes
        return self.db.write(work)

    def merges(self, limit: int) -> list[MergeListing]:
        with self.db.read() as conn:
            return merge.merges(conn, limit)

    def reverse_merge(self, merge_id: int, at: datetime, actor: str, reason: str) -> MergeRecord:
        return self.db.write(lambda conn: merge.reverse_merge(conn, merge_id, at, actor, reason))


def _ris_patient(row: Row[Any]) -> Patient | None:
    m = row._mapping
    if m["ris_id"] is None:
        return None
    return Patient(m["ris_PatientID"], m["ris_IssuerOfPatientID"], m["ris_PatientName"], m["ris_PatientBirthDate"],
                   m["ris_PatientSex"])
