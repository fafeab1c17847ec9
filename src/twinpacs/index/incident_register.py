"""The incident register in the index (tables `incidents`, `incident_versions`)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Row

from ..core.incident_register import FIELDS, Incident, IncidentRegister, IncidentVersion, diff, empty_fields
from ..core.incidents import IncidentDrafts
from ..core.taxonomy import site_taxonomy
from ..errors import InvalidInput
from .database import Database
from .notices import as_utc, new_id
from .incidents import SqlIncidentStore
from .schema import incident_versions, incidents


def _utc(value: datetime | None) -> datetime:
    found = as_utc(value)
    assert found is not None
    return found


def _incident(row: Row[Any], versions: list[IncidentVersion]) -> Incident:
    m = row._mapping
    stored = json.loads(m["fields"])
    # A field added to the register later reads as empty on incidents written before it.
    fields = {**empty_fields(), **{k: v for k, v in stored.items() if k in FIELDS}}
    return Incident(id=m["id"], version=m["version"], created_at=_utc(m["created_at"]), created_by=m["created_by"],
                    updated_at=_utc(m["updated_at"]), updated_by=m["updated_by"], fields=fields,
                    versions=tuple(versions))


def _load(conn: Connection, rows: list[Row[Any]]) -> list[Incident]:
    ids = [r._mapping["id"] for r in rows]
    by_incident: dict[int, list[IncidentVersion]] = defaultdict(list)
    if ids:
        found = conn.execute(select(incident_versions).where(incident_versions.c.incident_id.in_(ids))
                             .order_by(incident_versions.c.incident_id, incident_versions.c.version))
        for v in found:
            m = v._mapping
            by_incident[m["incident_id"]].append(IncidentVersion(m["version"], _utc(m["changed_at"]), m["changed_by"],
                                                                 json.loads(m["changes"])))
    return [_incident(r, by_incident[r._mapping["id"]]) for r in rows]


def _columns(fields: dict[str, Any]) -> dict[str, Any]:
    return {"event_date": fields["event_date"], "subject": fields["subject"], "consequence": fields["consequence"],
            "source_draft": fields["source_draft"], "fields": json.dumps(fields, sort_keys=True)}


def _version(conn: Connection, incident_id: int, version: int, at: datetime, by: str,
             changes: dict[str, Any]) -> None:
    conn.execute(insert(incident_versions).values(incident_id=incident_id, version=version, changed_at=at,
                                                  changed_by=by, changes=json.dumps(changes)))  # in FIELDS order


class SqlRegisterStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, fields: dict[str, Any], changes: dict[str, dict[str, Any]], at: datetime,
               by: str) -> Incident:
        def work(conn: Connection) -> int:
            draft = fields["source_draft"]
            if draft is not None:
                taken = conn.execute(select(incidents.c.id).where(incidents.c.source_draft == draft)).scalar()
                if taken is not None:
                    raise InvalidInput(f"incident draft {draft} was already taken over as incident {taken}")
            incident_id = new_id(conn.execute(insert(incidents).values(
                version=1, created_at=at, created_by=by, updated_at=at, updated_by=by, **_columns(fields))))
            _version(conn, incident_id, 1, at, by, changes)
            return incident_id
        found = self.get(self.db.write(work))
        assert found is not None
        return found

    def update(self, incident_id: int, change: Callable[[Incident], dict[str, Any]], at: datetime,
               by: str) -> Incident | None:
        def work(conn: Connection) -> bool:
            row = conn.execute(select(incidents).where(incidents.c.id == incident_id).with_for_update()).first()
            if row is None:
                return False
            current = _load(conn, [row])[0]
            fields = change(current)
            changes = diff(current.fields, fields)
            if changes:
                conn.execute(update(incidents).where(incidents.c.id == incident_id).values(
                    version=current.version + 1, updated_at=at, updated_by=by, **_columns(fields)))
                _version(conn, incident_id, current.version + 1, at, by, changes)
            return True
        return self.get(incident_id) if self.db.write(work) else None

    def get(self, incident_id: int) -> Incident | None:
        with self.db.read() as conn:
            row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).first()
            return _load(conn, [row])[0] if row is not None else None

    def list(self) -> list[Incident]:
        """Newest event first (then newest record)."""
        with self.db.read() as conn:
            rows = list(conn.execute(select(incidents).order_by(incidents.c.event_date.desc(), incidents.c.id.desc())))
            return _load(conn, rows)


def register_for(db: Database, data_dir: Path) -> IncidentRegister:
    """The register over a site's index, with the site's taxonomy (its own list of steps if it has one)."""
    return IncidentRegister(SqlRegisterStore(db), site_taxonomy(data_dir))


def drafts_for(db: Database) -> IncidentDrafts:
    return IncidentDrafts(SqlIncidentStore(db))
