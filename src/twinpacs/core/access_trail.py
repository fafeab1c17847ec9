"""The access trail's vocabulary (issue 9): every access to patient data, by whom, from where,
on what, with which outcome. The doors (DICOM, HTTP, HL7, commands) build an AccessEntry and
hand it to the site's AccessTrail; the trail is append-only (index/access_trail.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal, Protocol, get_args

from ..errors import InvalidInput
from .principal import Principal

Action = Literal[
    "query", "retrieve", "view", "export", "store", "correction", "merge", "deletion",
    "failover", "configuration", "login", "logout",
]
Outcome = Literal["success", "refused", "failed"]
Door = Literal["dicom", "http", "hl7", "cli"]


@dataclass(frozen=True)
class AccessEntry:
    principal: Principal
    action: Action
    outcome: Outcome
    door: Door
    patient_id: str = ""
    study_uid: str = ""
    detail: str = ""  # what exactly: the route or service, the query keys, how many objects


class AccessTrail(Protocol):
    def record(self, entry: AccessEntry) -> None:
        """Append one entry durably; never raises into the caller's request."""

    def record_now(self, entry: AccessEntry) -> None:
        """As record, committed before returning: for rare actions (failover, correction...)."""


@dataclass(frozen=True)
class TrailRecord:
    """An entry as the trail keeps it: numbered, timed (UTC) and placed at a site."""

    id: int
    at: datetime
    site: str
    entry: AccessEntry

    def as_dict(self) -> dict[str, str | int]:
        e, p = self.entry, self.entry.principal
        return {"id": self.id, "at": self.at.isoformat(), "site": self.site, "action": e.action,
                "outcome": e.outcome, "door": e.door, "principal": p.name, "role": p.role, "kind": p.kind,
                "address": p.address, "patient_id": e.patient_id, "study_uid": e.study_uid, "detail": e.detail}


@dataclass(frozen=True)
class TrailFilter:
    """Which entries a reader wants; empty fields match everything. Newest first, `limit` of them."""

    since: datetime | None = None
    until: datetime | None = None
    patient_id: str = ""
    study_uid: str = ""
    who: str = ""  # the principal's name
    action: str = ""
    limit: int = 1000


ACTIONS: tuple[str, ...] = get_args(Action)
MAX_LIMIT = 100_000


def parse_time(text: str, name: str) -> datetime | None:
    """An ISO 8601 date or date-time; without a zone it is taken as UTC."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{name} {text!r} is not an ISO 8601 date or date-time "
                           "(e.g. 2026-12-04 or 2026-12-04T08:00:00Z)") from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def trail_filter(since: str = "", until: str = "", patient: str = "", study: str = "", who: str = "",
                 action: str = "", limit: int | str = 1000) -> TrailFilter:
    """A filter from what a person typed (command options, query parameters); InvalidInput if wrong."""
    if action and action not in ACTIONS:
        raise InvalidInput(f"action {action!r} is not one of: {', '.join(ACTIONS)}")
    try:
        count = int(limit)
    except ValueError:
        raise InvalidInput(f"limit {limit!r} is not a number") from None
    if not 1 <= count <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}")
    return TrailFilter(parse_time(since, "since"), parse_time(until, "until"), patient, study, who, action, count)
