"""Incident drafts: records the archive writes itself when something went wrong on purpose or
by accident (a forced failover with studies missing at the target). The incident register (a
later issue) takes them over; until then they are listed as they were written."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ..errors import InvalidInput
from .archive import utcnow


@dataclass(frozen=True)
class IncidentDraft:
    id: int
    created_at: datetime
    site: str  # the site the incident happened at (a site name, as configured)
    title: str
    description: str
    details: dict[str, Any] = field(default_factory=dict)  # e.g. reason, actor, missing_studies

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "created_at": self.created_at.isoformat()}


class IncidentStore(Protocol):
    def add(self, created_at: datetime, site: str, title: str, description: str,
            details: dict[str, Any]) -> IncidentDraft: ...
    def drafts(self) -> list[IncidentDraft]: ...


class IncidentDrafts:
    """Facade: `draft(...)` writes one draft in its own transaction; `drafts()` lists them,
    newest first. Built with `Announcements.from_site(site).incidents` or
    `IncidentDrafts(SqlIncidentStore(site.index.db))`."""

    def __init__(self, store: IncidentStore, now: Callable[[], datetime] = utcnow) -> None:
        self._store = store
        self._now = now

    def draft(self, site: str, title: str, description: str,
              details: dict[str, Any] | None = None) -> IncidentDraft:
        if not site.strip() or not title.strip():
            raise InvalidInput("an incident draft needs a site and a title")
        return self._store.add(self._now(), site, title.strip(), description, dict(details or {}))

    def drafts(self) -> list[IncidentDraft]:
        return self._store.drafts()
