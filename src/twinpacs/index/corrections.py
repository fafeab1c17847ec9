"""Corrected study attributes (reconciliation, A40 merges), applied inside the caller's write
transaction. The index rows change: the study takes the corrected accession number and moves
under the patient row of the corrected identity, the per-patient counters follow. The stored
files never change (G2); `study_overrides` records each corrected attribute (and its value
before the first correction) so that DICOMweb metadata, read from the files, shows the
correction too."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, Row

from ..core.model import PATIENT_KEYS
from ..core.ris_sync import STUDY
from ..errors import NotFound
from .database import Database
from .ris_revisions import lock_revisions, mark
from .schema import operator_log, patients, studies, study_overrides

CORRECTABLE = (*PATIENT_KEYS, "AccessionNumber")
Changes = dict[str, dict[str, str]]  # keyword -> {"before": ..., "after": ...}


def study_row(conn: Connection, uid: str, lock: bool = False) -> Row[Any] | None:
    """The study with its patient's attributes; `lock` holds the study row until commit
    (PostgreSQL: a store bumping its counters waits; SQLite writers are serialised anyway)."""
    statement = (select(studies.c.id, studies.c.patient_pk, studies.c.num_series, studies.c.num_instances,
                        studies.c.AccessionNumber, *[patients.c[k] for k in PATIENT_KEYS])
                 .join(patients, studies.c.patient_pk == patients.c.id)
                 .where(studies.c.StudyInstanceUID == uid))
    return conn.execute(statement.with_for_update(of=studies) if lock else statement).first()


def correct_study(conn: Connection, uid: str, values: dict[str, str], at: datetime) -> Changes:
    """Give the study these attribute values (keywords of CORRECTABLE, applied as given: an
    empty value is an empty value). Patient attributes are the patient row's: the study moves
    under the row of the new identity, created if missing, whose demographics become `values`'."""
    unknown = set(values) - set(CORRECTABLE)
    if unknown:
        raise ValueError(f"not correctable: {sorted(unknown)}")
    lock_revisions(conn)  # before the study row's lock: see ris_revisions
    row = study_row(conn, uid, lock=True)
    if row is None:
        raise NotFound(f"no study {uid} is held here")
    before = {k: str(row._mapping[k]) for k in CORRECTABLE}
    after = {**before, **values}
    given = {k: v for k, v in values.items() if k in PATIENT_KEYS}
    if any(before[k] != after[k] for k in PATIENT_KEYS):
        target = conn.execute(select(patients).where(patients.c.PatientID == after["PatientID"],
                                                     patients.c.IssuerOfPatientID == after["IssuerOfPatientID"])).first()
        if target is None:
            target_pk = int(conn.execute(insert(patients).values(
                **{k: after[k] for k in PATIENT_KEYS}, num_studies=0, num_series=0, num_instances=0,
            )).inserted_primary_key[0])  # type: ignore[index]
        else:
            target_pk = target.id
            current = {k: str(target._mapping[k]) for k in PATIENT_KEYS}
            after.update({**current, **given})
            if any(current[k] != after[k] for k in PATIENT_KEYS):
                conn.execute(update(patients).where(patients.c.id == target_pk)
                             .values(**{k: after[k] for k in PATIENT_KEYS}))
        if target_pk != row.patient_pk:
            _move(conn, row, target_pk)
    if before["AccessionNumber"] != after["AccessionNumber"]:
        conn.execute(update(studies).where(studies.c.id == row.id).values(AccessionNumber=after["AccessionNumber"]))
    changes = {k: {"before": before[k], "after": after[k]} for k in CORRECTABLE if before[k] != after[k]}
    _record(conn, uid, changes, at)
    return changes


def _move(conn: Connection, study: Row[Any], to_pk: int) -> None:
    """The study under another patient row, counters kept; a patient row left without studies goes."""
    conn.execute(update(studies).where(studies.c.id == study.id).values(patient_pk=to_pk))
    for pk, sign in ((study.patient_pk, -1), (to_pk, 1)):
        conn.execute(update(patients).where(patients.c.id == pk).values(
            num_studies=patients.c.num_studies + sign, num_series=patients.c.num_series + sign * study.num_series,
            num_instances=patients.c.num_instances + sign * study.num_instances))
    left = conn.execute(select(func.count()).select_from(studies).where(studies.c.patient_pk == study.patient_pk))
    if not left.scalar_one():
        conn.execute(delete(patients).where(patients.c.id == study.patient_pk))


def _record(conn: Connection, uid: str, changes: Changes, at: datetime) -> None:
    """Fold `changes` into the study's override row: a value corrected back to what it was
    before the first correction is no correction any more; no corrections, no row."""
    saved = override_row(conn, uid) or {"attributes": {}, "original": {}}
    attributes, original = saved["attributes"], saved["original"]
    for keyword, change in changes.items():
        original.setdefault(keyword, change["before"])
        attributes[keyword] = change["after"]
        if attributes[keyword] == original[keyword]:
            del attributes[keyword], original[keyword]
    set_override_row(conn, uid, {"attributes": attributes, "original": original} if attributes else None, at)


def override_row(conn: Connection, uid: str) -> dict[str, dict[str, str]] | None:
    row = conn.execute(select(study_overrides.c.attributes, study_overrides.c.original)
                       .where(study_overrides.c.StudyInstanceUID == uid)).first()
    return {"attributes": json.loads(row.attributes), "original": json.loads(row.original)} if row else None


def set_override_row(conn: Connection, uid: str, saved: dict[str, dict[str, str]] | None, at: datetime) -> None:
    """Put the override row back exactly as `saved` (None: no row), as a reversal needs. A
    change is versioned for the peers (ris_versions); the same content again is no change."""
    if override_row(conn, uid) == saved:
        return
    mark(conn, STUDY, uid, at)
    conn.execute(delete(study_overrides).where(study_overrides.c.StudyInstanceUID == uid))
    if saved is not None:
        conn.execute(insert(study_overrides).values(
            StudyInstanceUID=uid, attributes=json.dumps(saved["attributes"], sort_keys=True),
            original=json.dumps(saved["original"], sort_keys=True), updated_at=at))


def study_overrides_of(db: Database, uid: str) -> dict[str, str]:
    """The corrected attributes of a study (keyword -> value), {} when none: one primary-key
    look-up, what DICOMweb metadata pays per request."""
    with db.read() as conn:
        text = conn.execute(select(study_overrides.c.attributes)
                            .where(study_overrides.c.StudyInstanceUID == uid)).scalar_one_or_none()
    return dict(json.loads(text)) if text else {}


def log_action(conn: Connection, at: datetime, actor: str, action: str, reason: str, details: dict[str, Any]) -> int:
    """An operator log entry in the same transaction as the correction it records (append only)."""
    done = conn.execute(insert(operator_log).values(at=at, actor=actor, action=action, reason=reason,
                                                    details=json.dumps(details, default=str, sort_keys=True)))
    return int(done.inserted_primary_key[0])  # type: ignore[index]
