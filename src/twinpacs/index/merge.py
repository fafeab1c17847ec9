"""A40 patient merges applied to the index, and their reversal, each in the caller's write
transaction with its operator log entry.

A merge moves every study the index holds under the prior identifier to the surviving
patient (index rows and study_overrides: C-FIND, QIDO-RS and metadata show the surviving
identifier), re-points the prior identifier's orders, and marks the RIS's prior patient
merged_into. Its patient_merges row records exactly what moved and the values before, so
`reverse_merge` puts each back; it refuses, changing nothing, when something it would put
back has been changed since. Issuers: an empty one matches any (core.reconcile.same_issuer)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, true, update
from sqlalchemy.engine import Connection, Row

from ..core.model import PATIENT_KEYS
from ..core.reconcile import MergeListing
from ..core.ris import MergeRecord, Patient
from ..core.ris_sync import ORDER, PATIENT, patient_key
from ..errors import InvalidInput, NotFound
from .corrections import correct_study, log_action, override_row, set_override_row, study_row
from .notices import as_utc
from .ris_revisions import lock_revisions, mark
from .schema import orders, patient_merges, patients, ris_patients, studies

_DEMOGRAPHICS = ("PatientName", "PatientBirthDate", "PatientSex")
MERGE_ACTOR = "ris (HL7 A40)"


def _issuer_matches(column: Any, issuer: str) -> Any:
    return true() if not issuer else or_(column == issuer, column == "")


def _values(patient: Patient) -> dict[str, str]:
    return {"PatientID": patient.patient_id, "IssuerOfPatientID": patient.issuer, "PatientName": patient.name,
            "PatientBirthDate": patient.birth_date, "PatientSex": patient.sex}


def _patient_of(row: Row[Any]) -> dict[str, str]:
    return {k: str(row._mapping[k]) for k in PATIENT_KEYS}


def merge_patients(conn: Connection, surviving: Patient, prior_id: str, prior_issuer: str, at: datetime,
                   message_id: str) -> MergeRecord:
    lock_revisions(conn)  # before any row's lock: see ris_revisions
    is_surviving = (patients.c.PatientID == surviving.patient_id) & (patients.c.IssuerOfPatientID == surviving.issuer)
    prior_pks = list(conn.scalars(select(patients.c.id).where(
        patients.c.PatientID == prior_id, _issuer_matches(patients.c.IssuerOfPatientID, prior_issuer), ~is_surviving)))
    uids = list(conn.scalars(select(studies.c.StudyInstanceUID).where(studies.c.patient_pk.in_(prior_pks))
                             .order_by(studies.c.id))) if prior_pks else []
    before = conn.execute(select(patients).where(is_surviving)).first()
    # The surviving patient's demographics as the A40 states them; what it leaves out stays as it is.
    target = {k: v for k, v in _values(surviving).items() if v or k == "IssuerOfPatientID"}
    moved = []
    for uid in uids:
        study = study_row(conn, uid)
        assert study is not None
        saved = override_row(conn, uid)
        correct_study(conn, uid, target, at)
        moved.append({"uid": uid, "patient": _patient_of(study), "override": saved})

    order_rows = conn.execute(select(orders).where(
        orders.c.PatientID == prior_id, _issuer_matches(orders.c.IssuerOfPatientID, prior_issuer))).all()
    for order in order_rows:
        conn.execute(update(orders).where(orders.c.id == order.id).values(**target, updated_at=at))
        mark(conn, ORDER, order.placer_number, at)
    ris_rows = conn.execute(select(ris_patients.c.id, ris_patients.c.merged_into, ris_patients.c.PatientID,
                                   ris_patients.c.IssuerOfPatientID).where(
        ris_patients.c.PatientID == prior_id, _issuer_matches(ris_patients.c.IssuerOfPatientID, prior_issuer))).all()
    for ris in ris_rows:
        conn.execute(update(ris_patients).where(ris_patients.c.id == ris.id)
                     .values(merged_into=surviving.patient_id, updated_at=at))
        mark(conn, PATIENT, patient_key(ris.PatientID, ris.IssuerOfPatientID), at)

    details = {
        "surviving": _values(surviving), "surviving_before": _patient_of(before) if before else None,
        "studies": moved, "orders": [{"id": o.id, "patient": _patient_of(o)} for o in order_rows],
        "ris_patients": [{"id": r.id, "merged_into": r.merged_into} for r in ris_rows],
    }
    merge_id = int(conn.execute(patient_merges.insert().values(
        at=at, surviving_id=surviving.patient_id, surviving_issuer=surviving.issuer, prior_id=prior_id,
        prior_issuer=prior_issuer, message_id=message_id[:64], details=json.dumps(details, sort_keys=True),
    )).inserted_primary_key[0])  # type: ignore[index]
    record = MergeRecord(merge_id, surviving, prior_id, prior_issuer, uids, [o.id for o in order_rows])
    log_action(conn, at, MERGE_ACTOR, "patient.merge", f"A40 message {message_id}" if message_id else "A40",
               {"merge": merge_id, "surviving": surviving.patient_id, "prior": prior_id,
                "studies": uids, "orders": record.orders})
    return record


def reverse_merge(conn: Connection, merge_id: int, at: datetime, actor: str, reason: str = "") -> MergeRecord:
    lock_revisions(conn)  # before any row's lock: see ris_revisions
    row = conn.execute(select(patient_merges).where(patient_merges.c.id == merge_id).with_for_update()).first()
    if row is None:
        raise NotFound(f"no patient merge {merge_id}")
    if row.reversed_at is not None:
        raise InvalidInput(f"merge {merge_id} was reversed already ({as_utc(row.reversed_at)}, by {row.reversed_by})")
    details = json.loads(row.details)
    surviving = details["surviving"]
    _check_unchanged(conn, merge_id, details)
    for study in details["studies"]:
        correct_study(conn, study["uid"], study["patient"], at)
        set_override_row(conn, study["uid"], study["override"], at)
    before = details["surviving_before"]
    if before is not None:
        conn.execute(update(patients).where(
            patients.c.PatientID == before["PatientID"], patients.c.IssuerOfPatientID == before["IssuerOfPatientID"],
        ).values(**{k: before[k] for k in _DEMOGRAPHICS}))
    for order in details["orders"]:
        for placer in conn.scalars(update(orders).where(orders.c.id == order["id"])
                                   .values(**order["patient"], updated_at=at).returning(orders.c.placer_number)).all():
            mark(conn, ORDER, placer, at)
    for ris in details["ris_patients"]:
        for identity in conn.execute(update(ris_patients).where(ris_patients.c.id == ris["id"])
                                     .values(merged_into=ris["merged_into"], updated_at=at)
                                     .returning(ris_patients.c.PatientID, ris_patients.c.IssuerOfPatientID)).all():
            mark(conn, PATIENT, patient_key(*identity), at)
    conn.execute(update(patient_merges).where(patient_merges.c.id == merge_id)
                 .values(reversed_at=at, reversed_by=actor[:128]))
    record = _record(row, details, reversed_=True)
    log_action(conn, at, actor, "patient.unmerge", reason,
               {"merge": merge_id, "surviving": surviving["PatientID"], "prior": row.prior_id,
                "studies": record.studies, "orders": record.orders})
    return record


def _check_unchanged(conn: Connection, merge_id: int, details: dict[str, Any]) -> None:
    """Refuse (nothing changed) when a study or order the merge moved names another patient now."""
    surviving = details["surviving"]
    changed = []
    for study in details["studies"]:
        now = study_row(conn, study["uid"])
        if now is None or now.PatientID != surviving["PatientID"]:
            changed.append(f"study {study['uid']}")
    ids = [o["id"] for o in details["orders"]]
    for order in conn.execute(select(orders.c.id, orders.c.PatientID).where(orders.c.id.in_(ids))) if ids else []:
        if order.PatientID != surviving["PatientID"]:
            changed.append(f"order {order.id}")
    if changed:
        raise InvalidInput(f"merge {merge_id} cannot be reversed: changed since, {', '.join(changed)}; nothing changed")


def _record(row: Row[Any], details: dict[str, Any], reversed_: bool) -> MergeRecord:
    s = details["surviving"]
    surviving = Patient(s["PatientID"], s["IssuerOfPatientID"], s["PatientName"], s["PatientBirthDate"], s["PatientSex"])
    return MergeRecord(row.id, surviving, row.prior_id, row.prior_issuer, [m["uid"] for m in details["studies"]],
                       [o["id"] for o in details["orders"]], reversed_)


def merges(conn: Connection, limit: int) -> list[MergeListing]:
    """Newest first."""
    rows = conn.execute(select(patient_merges).order_by(patient_merges.c.id.desc()).limit(limit)).all()
    listings = []
    for row in rows:
        at = as_utc(row.at)
        assert at is not None
        listings.append(MergeListing(_record(row, json.loads(row.details), row.reversed_at is not None), at,
                                     row.message_id, as_utc(row.reversed_at), row.reversed_by))
    return listings
