"""Incident drafts: records the archive writes itself when something went wrong on purpose or
by accident (a forced failover, a sync gap that lasts, slow or failed retrievals, a setting
changed at start, replication giving up). Each draft is pre-filled and pre-classified, and
waits for a person to review it. A draft raised for a condition (e.g. "sync_gap:B") stays the
only open draft of that condition until it is reviewed, so a lasting condition never floods
the list. The incident register takes reviewed drafts over."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ..errors import InvalidInput, NotFound
from .archive import utcnow

SEVERITIES = ("info", "warning", "critical")  # the notices' scale, least severe first
STATES = ("open", "reviewed")


TITLE_MAX = 256  # the index's column; a longer title is cut rather than refused: the archive writes it


def severity_rank(severity: str) -> int:
    if severity not in SEVERITIES:
        raise InvalidInput(f"severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
    return SEVERITIES.index(severity)


@dataclass(frozen=True)
class Escalation:
    """One webhook receiver's delivery of a draft."""

    id: int
    receiver: str  # the URL as shown, secrets masked
    state: str  # sending | delivered | failed
    attempts: int
    last_error: str
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat()}


@dataclass(frozen=True)
class IncidentDraft:
    id: int
    created_at: datetime
    site: str  # the site the incident happened at (a site name, as configured)
    title: str
    description: str
    details: dict[str, Any] = field(default_factory=dict)  # e.g. reason, actor, missing_studies, figures
    condition: str = ""  # what raised it, e.g. "sync_gap:B"; "" for a draft written by hand
    # {"problem_types": [HIT-CS ids], "consequence": id, "workflow_steps": [numbers], "basis": why}
    classification: dict[str, Any] = field(default_factory=dict)
    severity: str = "warning"
    state: str = "open"
    reviewed_at: datetime | None = None
    reviewed_by: str = ""
    review_note: str = ""
    escalations: tuple[Escalation, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        data["reviewed_at"] = self.reviewed_at.isoformat() if self.reviewed_at else None
        data["escalations"] = [e.as_dict() for e in self.escalations]
        return data


@dataclass(frozen=True)
class DraftSpec:
    """What a rule (core/event_watch.py) or a forced failover asks to be drafted."""

    condition: str
    title: str
    description: str
    details: dict[str, Any]
    classification: dict[str, Any]
    severity: str


class IncidentStore(Protocol):
    def add(self, created_at: datetime, site: str, title: str, description: str, details: dict[str, Any],
            condition: str = "", classification: dict[str, Any] | None = None,
            severity: str = "warning") -> tuple[IncidentDraft, bool]:
        """The new draft and True; or, when `condition` already has an open draft, that one and False."""
        ...
    def drafts(self) -> list[IncidentDraft]: ...
    def get(self, draft_id: int) -> IncidentDraft | None: ...
    def open_conditions(self) -> set[str]: ...
    def review(self, draft_id: int, at: datetime, by: str, note: str) -> IncidentDraft | None:
        """Mark it reviewed if it is open; the draft as it now is, None if unknown."""
        ...


class IncidentDrafts:
    """Facade: `draft(...)` writes one draft in its own transaction; `raise_for(spec)` drafts a
    condition unless it has an open draft already; `review(...)` closes one; `drafts()` lists
    them, newest first. Built with `Announcements.from_site(site).incidents` or
    `IncidentDrafts(SqlIncidentStore(site.index.db))`."""

    def __init__(self, store: IncidentStore, now: Callable[[], datetime] = utcnow) -> None:
        self._store = store
        self._now = now

    def draft(self, site: str, title: str, description: str,
              details: dict[str, Any] | None = None) -> IncidentDraft:
        if not site.strip() or not title.strip():
            raise InvalidInput("an incident draft needs a site and a title")
        draft, _ = self._store.add(self._now(), site, title.strip()[:TITLE_MAX], description, dict(details or {}))
        return draft

    def raise_for(self, site: str, spec: DraftSpec) -> tuple[IncidentDraft, bool]:
        """The condition's draft and whether it was written now (False: one was open already)."""
        if not site.strip() or not spec.title.strip() or not spec.condition.strip():
            raise InvalidInput("an incident draft from an event needs a site, a title and a condition")
        severity_rank(spec.severity)
        return self._store.add(self._now(), site, spec.title.strip()[:TITLE_MAX], spec.description, dict(spec.details),
                               spec.condition, dict(spec.classification), spec.severity)

    def drafts(self) -> list[IncidentDraft]:
        return self._store.drafts()

    def get(self, draft_id: int) -> IncidentDraft:
        draft = self._store.get(draft_id)
        if draft is None:
            raise NotFound(f"no incident draft with id {draft_id}")
        return draft

    def open_conditions(self) -> set[str]:
        return self._store.open_conditions()

    def review(self, draft_id: int, reviewed_by: str, note: str = "") -> IncidentDraft:
        """Reviewing twice is harmless: the second call returns the draft as first reviewed."""
        if not reviewed_by.strip():
            raise InvalidInput("reviewed_by: a review needs the name of the person reviewing")
        draft = self._store.review(draft_id, self._now(), reviewed_by.strip(), note)
        if draft is None:
            raise NotFound(f"no incident draft with id {draft_id}")
        return draft
