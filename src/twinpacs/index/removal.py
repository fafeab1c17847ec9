"""Removal of a study made by `twinpacs selftest`: the only deletion twinpacs performs.

One write transaction removes the study's instances, their conflicting versions, their
outbox rows, its series, the study, and the patient once it has no study left, keeping the
patient's counters; each instance gets a "removed" entry in the change log. Outbox rows go
too, so sync status (the latest outbox row per object against the instances held) and the
audit digests (computed from the instances) stay consistent on every site it is removed from.

Refused, with nothing removed, unless the study's patient and every instance and version in
it carry the self-test marker: checked here, inside the transaction that deletes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, func, insert, select, union, update
from sqlalchemy.engine import Connection

from ..errors import NotFound, TwinpacsError
from .schema import changes, instance_versions, instances, outbox, patients, series, studies


class NotSelfTestObject(TwinpacsError):
    """A removal asked for a study that is not (wholly) a self-test object: refused."""

    http_status = 403


@dataclass(frozen=True)
class RemovedStudy:
    study_instance_uid: str
    instances: int
    series: int
    versions: int
    patient_removed: bool
    unreferenced: list[str]  # content hashes no index row references any more: their files may go

    def as_dict(self) -> dict[str, object]:
        return {"study": self.study_instance_uid, "instances": self.instances, "series": self.series,
                "versions": self.versions, "patient_removed": self.patient_removed}


def remove_study(conn: Connection, study_uid: str, marker: str, at: datetime,
                 is_marked: Callable[[str], bool]) -> RemovedStudy:
    """Remove the study if its patient's PatientID is `marker` and `is_marked(content_hash)`
    holds for each instance and version (the stored object itself carries the marker)."""
    study = conn.execute(
        select(studies.c.id, studies.c.patient_pk, patients.c.PatientID)
        .join(patients, studies.c.patient_pk == patients.c.id)
        .where(studies.c.StudyInstanceUID == study_uid)
    ).first()
    if study is None:
        raise NotFound(f"no study {study_uid} is held here")
    refused = f"study {study_uid} is not a self-test object"
    if study.PatientID != marker:
        raise NotSelfTestObject(f"{refused} (PatientID {study.PatientID!r}, not {marker!r}); nothing removed")
    held = conn.execute(
        select(instances.c.id, instances.c.SOPInstanceUID, instances.c.content_hash, instances.c.series_pk)
        .join(series, instances.c.series_pk == series.c.id).where(series.c.study_pk == study.id)
    ).all()
    uids = [row.SOPInstanceUID for row in held]
    versions = conn.execute(select(instance_versions.c.id, instance_versions.c.content_hash)
                            .where(instance_versions.c.SOPInstanceUID.in_(uids))).all() if uids else []
    # A study is found by its UID alone at store time, so an object of another patient naming
    # this Study Instance UID would sit under it: each stored object is checked, not the row.
    for content_hash in {row.content_hash for row in held} | {v.content_hash for v in versions}:
        if not is_marked(content_hash):
            raise NotSelfTestObject(f"{refused}: object {content_hash[:16]}… in it is not marked; nothing removed")

    series_pks = {row.series_pk for row in held} | set(
        conn.scalars(select(series.c.id).where(series.c.study_pk == study.id)))
    if uids:
        # No index on outbox.SOPInstanceUID: this scans the outbox (as sync status already does).
        conn.execute(delete(outbox).where(outbox.c.SOPInstanceUID.in_(uids)))
        conn.execute(delete(instance_versions).where(instance_versions.c.SOPInstanceUID.in_(uids)))
        conn.execute(delete(instances).where(instances.c.id.in_([row.id for row in held])))
        conn.execute(insert(changes), [
            {"kind": "removed", "SOPInstanceUID": row.SOPInstanceUID, "StudyInstanceUID": study_uid,
             "content_hash": row.content_hash, "at": at} for row in held])
    if series_pks:
        conn.execute(delete(series).where(series.c.id.in_(series_pks)))
    conn.execute(delete(studies).where(studies.c.id == study.id))
    patient_removed = _settle_patient(conn, study.patient_pk, len(series_pks), len(held))
    candidates = {row.content_hash for row in held} | {v.content_hash for v in versions}
    return RemovedStudy(study_uid, len(held), len(series_pks), len(versions), patient_removed,
                        sorted(candidates - _still_referenced(conn, uids, candidates)))


def _settle_patient(conn: Connection, patient_pk: int, series_count: int, instance_count: int) -> bool:
    """Remove the patient if it has no study left, else take the study off its counters."""
    left = conn.execute(select(func.count()).select_from(studies).where(studies.c.patient_pk == patient_pk)).scalar_one()
    if not left:
        conn.execute(delete(patients).where(patients.c.id == patient_pk))
        return True
    conn.execute(update(patients).where(patients.c.id == patient_pk).values(
        num_studies=patients.c.num_studies - 1, num_series=patients.c.num_series - series_count,
        num_instances=patients.c.num_instances - instance_count))
    return False


def _still_referenced(conn: Connection, uids: list[str], hashes: set[str]) -> set[str]:
    """Those of `hashes` an index row still names. The content hash covers the data set, which
    holds the SOP Instance UID, so only a row of the same UID can name the same hash: looking
    among those UIDs is exact and uses their indexes (content_hash has none)."""
    if not uids or not hashes:
        return set()
    statement = union(
        select(instances.c.content_hash).where(and_(instances.c.SOPInstanceUID.in_(uids),
                                                    instances.c.content_hash.in_(hashes))),
        select(instance_versions.c.content_hash).where(and_(instance_versions.c.SOPInstanceUID.in_(uids),
                                                            instance_versions.c.content_hash.in_(hashes))),
    )
    return set(conn.scalars(statement))
