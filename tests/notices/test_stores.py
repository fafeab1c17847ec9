"""The three facades over the index, on SQLite and PostgreSQL (the contract habit)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from twinpacs.core.incidents import IncidentDrafts
from twinpacs.core.notices import Notices
from twinpacs.core.operator_log import OperatorLog
from twinpacs.errors import InvalidInput, NotFound
from twinpacs.index.incidents import SqlIncidentStore
from twinpacs.index.notices import SqlNoticeStore
from twinpacs.index.operator_log import SqlOperatorLogStore
from twinpacs.index.sql import SqlIndex

NOW = datetime(2026, 3, 2, 11, 55, tzinfo=timezone.utc)


def test_notices(index: SqlIndex) -> None:
    log = OperatorLog(SqlOperatorLogStore(index.db), now=lambda: NOW)
    notices = Notices(SqlNoticeStore(index.db), operator_log=log, now=lambda: NOW)
    studies = [{"StudyInstanceUID": "1.2", "PatientName": "Ünïcode^Ånne", "instances_missing": 2}]
    first = notices.post("warning", "  Slow replication ", posted_by="ops")
    second = notices.post("critical", "Failover forced", "body", studies, "frank")
    assert first.title == "Slow replication" and first.posted_at == NOW and first.active
    assert second.studies == studies
    assert [n.id for n in notices.list()] == [second.id, first.id]
    cleared = notices.clear(first.id, "gina")
    assert cleared.cleared_at == NOW and not cleared.active
    assert [n.id for n in notices.active()] == [second.id]
    assert [n.id for n in notices.list(active_only=False)] == [second.id, first.id]
    assert [e.action for e in log.entries()] == ["notice.clear", "notice.post", "notice.post"]
    with pytest.raises(NotFound):
        notices.clear(12345)
    with pytest.raises(InvalidInput):
        notices.post("fatal", "x")


def test_operator_log_and_incidents(index: SqlIndex) -> None:
    log = OperatorLog(SqlOperatorLogStore(index.db), now=lambda: NOW)
    entry = log.record("hank", "failover.force", "surgery", {"missing": ["1.2.3"], "when": NOW})
    assert log.entries() == [entry] and entry.at == NOW and entry.details["when"] == NOW.isoformat(" ")
    with pytest.raises(InvalidInput):
        log.record(" ", "x")
    drafts = IncidentDrafts(SqlIncidentStore(index.db), now=lambda: NOW)
    draft = drafts.draft("A", "Forced failover", "what happened", {"reason": "surgery"})
    assert drafts.drafts() == [draft] and draft.created_at == NOW
