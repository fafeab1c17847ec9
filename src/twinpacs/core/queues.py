"""Queues are never silent: what every work queue (replication now, prefetch later) reports
about itself, per destination. The metrics endpoint and status commands read this shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

QUEUE_STATES = ("pending", "confirmed", "unverified", "failed")  # the outbox lifecycle


@dataclass(frozen=True)
class QueueStats:
    queue: str  # "replication", later "prefetch"
    destination: str  # a peer name
    by_state: dict[str, int] = field(default_factory=dict)  # every QUEUE_STATES key, 0 if none
    oldest_pending_at: datetime | None = None
    retrying: int = 0  # pending items whose last attempt failed (they carry a last_error)
    attempts: int = 0  # send attempts made for the items still in the queue's table

    def count(self, state: str) -> int:
        return self.by_state.get(state, 0)

    def oldest_pending_age_s(self, now: datetime) -> float:
        """0 when nothing is pending; never negative (clock skew between writers)."""
        if self.oldest_pending_at is None:
            return 0.0
        return max(0.0, (now - self.oldest_pending_at).total_seconds())
