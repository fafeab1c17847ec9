"""The failover gate's rules, with the index, peers and notice board replaced by fakes."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from twinpacs.core.failover import Failover, FailoverRefused, Services
from twinpacs.core.sync import PeerCounts
from twinpacs.errors import InvalidInput

NOW = datetime(2026, 11, 30, 11, 55, tzinfo=timezone.utc)
MISSING = [{"StudyInstanceUID": "1.2.3", "PatientID": "P1", "PatientName": "Doe^Jane",
            "AccessionNumber": "A1", "StudyDate": "20261130", "instances_missing": 3}]


class FakeRoles:
    def __init__(self) -> None:
        self.role, self.active_site = "active", "A"

    def set(self, role: str, active_site: str) -> None:
        self.role, self.active_site = role, active_site


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail = fail

    def set_role(self, *args: Any) -> None:
        if self.fail:
            raise RuntimeError("peer unreachable")
        self.calls.append(("set_role", *args))

    def post(self, *args: Any) -> None:
        self.calls.append(("post", *args))

    def record(self, *args: Any) -> None:
        self.calls.append(("record", *args))

    def draft(self, *args: Any) -> None:
        self.calls.append(("draft", *args))


class FakeSource:
    def __init__(self, pending: int) -> None:
        self.pending = pending

    def peer_counts(self, peer: str, now: datetime) -> PeerCounts:
        return PeerCounts(held=10, confirmed=10 - self.pending, pending=self.pending, failed=0, unverified=0,
                          oldest_pending_at=NOW if self.pending else None, confirmed_in_window=0, last_error="")

    def missing_studies(self, peer: str) -> list[dict[str, Any]]:
        return MISSING if self.pending else []


def _failover(pending: int, control: Recorder | None = None) -> tuple[Failover, FakeRoles, Recorder]:
    roles, log = FakeRoles(), Recorder()
    services = Services(control or log, log, log, log)
    return Failover("A", roles, FakeSource(pending), ["B"], services, lambda: NOW), roles, log  # type: ignore[arg-type]


def test_gate_refuses_and_lists_what_is_missing() -> None:
    failover, roles, log = _failover(pending=3)
    plan = failover.plan("B")
    assert not plan.ready and plan.missing_studies == MISSING and "3 pending" in plan.reasons[0]
    with pytest.raises(FailoverRefused):
        failover.run("B", actor="admin")
    assert roles.role == "active" and log.calls == []


def test_planned_switch_when_ready() -> None:
    failover, roles, log = _failover(pending=0)
    assert failover.plan("B").ready
    assert failover.run("B", actor="admin")["switched"]
    assert (roles.role, roles.active_site) == ("standby", "B")
    assert ("set_role", "B", "active", "B") in log.calls


def test_forced_switch_needs_a_reason_and_leaves_a_trail() -> None:
    failover, roles, log = _failover(pending=3)
    with pytest.raises(InvalidInput):
        failover.run("B", actor="admin", force=True, reason=" ")
    assert roles.role == "active"
    result = failover.run("B", actor="Dr. Admin", force=True, reason="A's storage is failing")
    assert result["forced"] and result["missing_studies"] == MISSING
    kinds = [c[0] for c in log.calls]
    assert kinds == ["set_role", "record", "post", "draft"]
    record = log.calls[1]
    assert record[1:4] == ("Dr. Admin", "failover-forced", "A's storage is failing")
    assert record[4]["missing_studies"] == MISSING
    assert log.calls[2][1] == "critical" and log.calls[2][4] == MISSING  # the notice names the studies


def test_unreachable_target_leaves_this_site_active() -> None:
    failover, roles, _ = _failover(pending=3, control=Recorder(fail=True))
    with pytest.raises(RuntimeError):
        failover.run("B", actor="admin", force=True, reason="test")
    assert roles.role == "active"


def test_unknown_target_and_standby_source() -> None:
    failover, roles, _ = _failover(pending=0)
    with pytest.raises(InvalidInput):
        failover.plan("C")
    roles.set("standby", "B")
    assert not failover.plan("B").ready
