"""The audit's digests (G5), computed from the index on every request.

Nothing is cached: a cached digest is one more thing that can disagree with what is held.
Each request is one read transaction and one scan of the instances it covers, in
SOPInstanceUID order (the unique index gives that order without a sort), feeding one
`Digester` per child. The scan is streamed, so memory grows with the number of children,
not of instances. Portable SQL: the same statements run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.engine import Connection

from ..core.audit import AuditLevel, Digester, Node, patient_key
from ..core.audit_presence import Entry
from ..errors import InvalidInput
from .database import Database
from .schema import instances, patients, series, studies

_ROWS = (instances.c.SOPInstanceUID, instances.c.content_hash, instances.c.size)
_STUDY_ATTRIBUTES = ("StudyInstanceUID", "StudyDate", "AccessionNumber", "StudyDescription")
_SERIES_ATTRIBUTES = ("SeriesInstanceUID", "Modality", "SeriesNumber")


class IndexDigestSource:
    """The local index as a DigestSource (core.audit)."""

    def __init__(self, db: Database, name: str) -> None:
        self.db = db
        self.name = name

    def top(self) -> Node:
        digester = Digester()
        with self.db.read() as conn:
            for uid, content_hash, size in _stream(conn, select(*_ROWS).order_by(_by_uid(conn))):
                digester.add(uid, content_hash, size)
        return digester.node("")

    def children(self, level: AuditLevel, parent: str) -> list[Node]:
        with self.db.read() as conn:
            if level is AuditLevel.PATIENT:
                return _patients(conn)
            if level is AuditLevel.STUDY:
                return _studies(conn, parent)
            if level is AuditLevel.SERIES:
                return _series(conn, parent)
            return _instances(conn, parent)


def _by_uid(conn: Connection) -> ColumnElement[str]:
    """UIDs in byte order whatever the database's locale: digests are compared across sites,
    and a PostgreSQL database created with e.g. en_US.UTF-8 ignores the dots when sorting
    ("12.2" before "1.23"), which SQLite, comparing bytes, does not."""
    uid = instances.c.SOPInstanceUID
    return uid.collate("C") if conn.dialect.name == "postgresql" else uid


def _stream(conn: Connection, statement: Select[Any]) -> Iterable[Any]:
    return conn.execution_options(stream_results=True, yield_per=10_000).execute(statement)


def _group(rows: Iterable[Any], group_of: dict[int, int] | None = None) -> dict[int, Digester]:
    """Rows (group pk, SOPInstanceUID, content_hash, size) in UID order -> a digester per group;
    `group_of` maps the row's pk to the group's when the scan carries a lower level's pk."""
    digesters: dict[int, Digester] = defaultdict(Digester)
    for pk, uid, content_hash, size in rows:
        digesters[group_of[pk] if group_of is not None else pk].add(uid, content_hash, size)
    return digesters


def _patients(conn: Connection) -> list[Node]:
    # Scanning instances alone, and mapping series to patients from the (far smaller) series
    # table, keeps the whole-archive scan free of per-row joins.
    patient_of_series = {s: p for s, p in conn.execute(
        select(series.c.id, studies.c.patient_pk).join(studies, series.c.study_pk == studies.c.id))}
    digesters = _group(_stream(conn, select(instances.c.series_pk, *_ROWS).order_by(_by_uid(conn))),
                       patient_of_series)
    rows = conn.execute(select(patients.c.id, patients.c.PatientID, patients.c.IssuerOfPatientID,
                               patients.c.PatientName))
    return sorted((digesters[pk].node(patient_key(pid, issuer), {"PatientID": pid, "PatientName": name,
                                                                   "IssuerOfPatientID": issuer})
                   for pk, pid, issuer, name in rows if pk in digesters), key=lambda n: n.key)


def _studies(conn: Connection, parent: str) -> list[Node]:
    patient_id, sep, issuer = parent.partition("\\")
    if not sep:
        raise InvalidInput("parent of the study level is a patient key: PatientID\\IssuerOfPatientID")
    where = (patients.c.PatientID == patient_id, patients.c.IssuerOfPatientID == issuer)
    scan = (select(series.c.study_pk, *_ROWS).select_from(instances)
            .join(series, instances.c.series_pk == series.c.id)
            .join(studies, series.c.study_pk == studies.c.id)
            .join(patients, studies.c.patient_pk == patients.c.id)
            .where(*where).order_by(_by_uid(conn)))
    digesters = _group(conn.execute(scan))
    rows = conn.execute(select(studies.c.id, patients.c.PatientID, patients.c.PatientName,
                               *(studies.c[k] for k in _STUDY_ATTRIBUTES))
                        .join(patients, studies.c.patient_pk == patients.c.id).where(*where))
    return sorted((digesters[pk].node(attrs["StudyInstanceUID"], attrs)
                   for pk, attrs in _attributes(rows) if pk in digesters), key=lambda n: n.key)


def _series(conn: Connection, study_uid: str) -> list[Node]:
    scan = (select(instances.c.series_pk, *_ROWS).select_from(instances)
            .join(series, instances.c.series_pk == series.c.id)
            .join(studies, series.c.study_pk == studies.c.id)
            .where(studies.c.StudyInstanceUID == study_uid).order_by(_by_uid(conn)))
    digesters = _group(conn.execute(scan))
    rows = conn.execute(select(series.c.id, *(series.c[k] for k in _SERIES_ATTRIBUTES))
                        .join(studies, series.c.study_pk == studies.c.id)
                        .where(studies.c.StudyInstanceUID == study_uid))
    return sorted((digesters[pk].node(attrs["SeriesInstanceUID"], attrs)
                   for pk, attrs in _attributes(rows) if pk in digesters), key=lambda n: n.key)


def _instances(conn: Connection, series_uid: str) -> list[Node]:
    rows = conn.execute(select(*_ROWS).select_from(instances).join(series, instances.c.series_pk == series.c.id)
                        .where(series.c.SeriesInstanceUID == series_uid).order_by(_by_uid(conn)))
    return [Node(uid, content_hash, 1, size) for uid, content_hash, size in rows]


def _attributes(rows: Iterable[Any]) -> Iterable[tuple[int, dict[str, str]]]:
    for row in rows:
        values = dict(row._mapping)
        yield int(values.pop("id")), {k: "" if v is None else str(v) for k, v in values.items()}


def listing(db: Database) -> list[Entry]:
    """Every instance with the attributes an audit report shows: what a presence audit of
    this site against a third-party archive compares, and what the deep audit re-reads."""
    statement = (select(instances.c.SOPInstanceUID, series.c.SeriesInstanceUID, studies.c.StudyInstanceUID,
                        patients.c.PatientID, patients.c.PatientName, patients.c.IssuerOfPatientID,
                        studies.c.AccessionNumber, studies.c.StudyDate, series.c.Modality,
                        instances.c.content_hash, instances.c.size)
                 .select_from(instances)
                 .join(series, instances.c.series_pk == series.c.id)
                 .join(studies, series.c.study_pk == studies.c.id)
                 .join(patients, studies.c.patient_pk == patients.c.id))
    with db.read() as conn:
        return [Entry(*row) for row in _stream(conn, statement.order_by(_by_uid(conn)))]
