"""The operator log: an append-only record of what operators did and why (failovers, forced
overrides, notices). There is deliberately no way to change or remove an entry: neither this
module, its store Protocol, the SQL adapter (index/operator_log.py) nor the HTTP API
(GET /api/operator-log only) offers one, and a test keeps it so."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ..errors import InvalidInput
from .archive import utcnow


@dataclass(frozen=True)
class LogEntry:
    id: int
    at: datetime
    actor: str  # who: a person's name or login, never blank
    action: str  # what, dotted: "failover.force", "notice.post", ...
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat()}


class OperatorLogStore(Protocol):
    """Append and read; nothing else exists on purpose."""

    def append(self, at: datetime, actor: str, action: str, reason: str, details: dict[str, Any]) -> LogEntry: ...
    def entries(self, limit: int | None = None, action: str | None = None) -> list[LogEntry]: ...


class OperatorLog:
    """Facade used by the failover, the notice commands and the API.

    Built with `twinpacs.announcements.Announcements.from_site(site).operator_log`, or directly
    as `OperatorLog(SqlOperatorLogStore(site.index.db))`."""

    def __init__(self, store: OperatorLogStore, now: Callable[[], datetime] = utcnow) -> None:
        self._store = store
        self._now = now

    def record(self, actor: str, action: str, reason: str = "", details: dict[str, Any] | None = None) -> LogEntry:
        """Append one entry (its own committed transaction) and return it with its id and time."""
        if not actor.strip():
            raise InvalidInput("the operator log needs to know who acted (actor is empty)")
        if not action.strip():
            raise InvalidInput("the operator log needs an action")
        return self._store.append(self._now(), actor.strip(), action.strip(), reason, dict(details or {}))

    def entries(self, limit: int | None = None, action: str | None = None) -> list[LogEntry]:
        """Newest first; `action` filters on an exact action name."""
        if limit is not None and limit < 1:
            raise InvalidInput("limit must be a positive integer")
        return self._store.entries(limit, action)
