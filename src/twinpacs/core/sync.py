"""Exact sync status (G4): integer counts per peer, and a percentage that is truncated,
never rounded up, so that one pending object out of a million still reads below 100%. A twinpacs
peer also counts the RIS changes (orders, RIS patients, study corrections; core/ris_sync.py) it
has not confirmed: while any is pending the peer is not in sync and the figure is not 100%."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

RATE_WINDOW_S = 300  # confirmations counted over the last five minutes


@dataclass(frozen=True)
class PeerCounts:
    """What the index knows about one peer, latest version of each object only."""

    held: int  # objects this site holds
    confirmed: int  # the peer holds them: content hash read back (or Storage Commitment)
    pending: int  # queued, not yet confirmed
    failed: int  # given up after the retry horizon; visible until retried
    unverified: int  # sent to a peer that cannot confirm
    oldest_pending_at: datetime | None
    confirmed_in_window: int
    last_error: str
    ris_pending: int = 0  # RIS changes not yet confirmed by the peer (twinpacs peers only)


@dataclass(frozen=True)
class PeerSync:
    name: str
    held: int
    confirmed: int
    pending: int
    failed: int
    unverified: int
    not_queued: int  # held here but never queued for the peer (stored before it was configured)
    oldest_pending_age_s: float | None
    rate_per_s: float
    eta_s: float | None
    percent: str
    in_sync: bool
    last_error: str
    ris_pending: int

    @property
    def objects_outstanding(self) -> int:
        return self.pending + self.failed + self.unverified + self.not_queued

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def peer_sync(name: str, counts: PeerCounts, now: datetime) -> PeerSync:
    queued = counts.confirmed + counts.pending + counts.failed + counts.unverified
    not_queued = max(0, counts.held - queued)
    outstanding = counts.pending + counts.failed + counts.unverified + not_queued
    rate = counts.confirmed_in_window / RATE_WINDOW_S
    age = (now - counts.oldest_pending_at).total_seconds() if counts.oldest_pending_at else None
    return PeerSync(
        name=name, held=counts.held, confirmed=counts.confirmed, pending=counts.pending,
        failed=counts.failed, unverified=counts.unverified, not_queued=not_queued,
        oldest_pending_age_s=round(age, 3) if age is not None else None,
        rate_per_s=round(rate, 3),
        eta_s=round(counts.pending / rate, 1) if counts.pending and rate > 0 else (0.0 if not counts.pending else None),
        percent=truncated_percent(counts.confirmed, counts.confirmed + outstanding,
                                  outstanding == 0 and counts.ris_pending == 0),
        in_sync=outstanding == 0 and counts.ris_pending == 0,
        last_error=counts.last_error,
        ris_pending=counts.ris_pending,
    )


def truncated_percent(part: int, whole: int, complete: bool) -> str:
    """part/whole as a percentage, truncated, with enough decimals that anything short of
    complete reads below 100 ('99.9999%' for 999,999 of 1,000,000). '100%' only if complete."""
    if complete:
        return "100%"
    if whole <= 0:
        return "0%"
    decimals = max(1, len(str(whole)) - 1)
    scaled = part * 100 * 10**decimals // whole  # integer arithmetic: no float rounding up
    scaled = min(scaled, 100 * 10**decimals - 1)  # incomplete is never shown as 100
    whole_part, fraction = divmod(scaled, 10**decimals)
    return f"{whole_part}.{fraction:0{decimals}d}%"
