"""G4: the percentage never rounds up, and 100% means nothing outstanding."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from twinpacs.core.sync import PeerCounts, peer_sync, truncated_percent

NOW = datetime(2026, 11, 30, 11, 55, tzinfo=timezone.utc)


def test_one_pending_in_a_million_is_not_100() -> None:
    assert truncated_percent(999_999, 1_000_000, complete=False) == "99.999900%"
    assert truncated_percent(1_999_999, 2_000_000, complete=False).startswith("99.99995")


@given(whole=st.integers(1, 10**9), data=st.data())
def test_incomplete_never_reads_100(whole: int, data: st.DataObject) -> None:
    part = data.draw(st.integers(0, whole))
    shown = truncated_percent(part, whole, complete=False)
    assert shown != "100%" and float(shown.rstrip("%")) < 100
    assert float(shown.rstrip("%")) <= part * 100 / whole  # truncated, never rounded up


def _counts(**kw: object) -> PeerCounts:
    base = dict(held=10, confirmed=10, pending=0, failed=0, unverified=0, oldest_pending_at=None,
                confirmed_in_window=0, last_error="")
    return PeerCounts(**{**base, **kw})  # type: ignore[arg-type]


def test_in_sync_only_when_nothing_outstanding() -> None:
    assert peer_sync("B", _counts(), NOW).percent == "100%"
    for outstanding in ({"confirmed": 9, "pending": 1}, {"confirmed": 9, "failed": 1},
                        {"confirmed": 9, "unverified": 1}, {"confirmed": 9}):
        sync = peer_sync("B", _counts(**outstanding), NOW)
        assert not sync.in_sync and sync.percent == "90.0%"


def test_age_rate_and_eta() -> None:
    sync = peer_sync("B", _counts(confirmed=4, pending=6, oldest_pending_at=NOW - timedelta(seconds=90),
                                  confirmed_in_window=300, last_error="connection refused"), NOW)
    assert (sync.oldest_pending_age_s, sync.rate_per_s, sync.eta_s) == (90.0, 1.0, 6.0)
    assert sync.last_error == "connection refused"
