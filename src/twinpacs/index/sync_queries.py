"""Outbox figures for sync status and the failover gate: the latest row per (peer, object)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from ..core.sync import RATE_WINDOW_S, PeerCounts
from .notices import as_utc
from .schema import instances, outbox, patients, series, studies


def _latest(peer: str) -> Any:
    """Each object's newest outbox row for `peer` (a replaced version supersedes the old one)."""
    newest = (
        select(func.max(outbox.c.id).label("id"))
        .where(outbox.c.peer == peer)
        .group_by(outbox.c.SOPInstanceUID)
        .subquery()
    )
    return select(outbox).join(newest, newest.c.id == outbox.c.id).subquery()


def peer_counts(conn: Connection, peer: str, now: datetime) -> PeerCounts:
    latest = _latest(peer)
    by_state = dict(conn.execute(select(latest.c.state, func.count()).group_by(latest.c.state)).all())
    oldest = conn.execute(select(func.min(latest.c.created_at)).where(latest.c.state == "pending")).scalar()
    window = conn.execute(
        select(func.count()).select_from(latest)
        .where(latest.c.state == "confirmed", latest.c.updated_at >= now - timedelta(seconds=RATE_WINDOW_S))
    ).scalar_one()
    error = conn.execute(
        select(latest.c.last_error).where(latest.c.state.in_(("pending", "failed")), latest.c.last_error != "")
        .order_by(latest.c.updated_at.desc()).limit(1)
    ).scalar()
    held = conn.execute(select(func.count()).select_from(instances)).scalar_one()
    return PeerCounts(
        held=held, confirmed=by_state.get("confirmed", 0), pending=by_state.get("pending", 0),
        failed=by_state.get("failed", 0), unverified=by_state.get("unverified", 0),
        oldest_pending_at=as_utc(oldest), confirmed_in_window=window, last_error=error or "",
    )


def missing_studies(conn: Connection, peer: str) -> list[dict[str, Any]]:
    """Studies with at least one object the peer is not confirmed to hold, most recent first."""
    latest = _latest(peer)
    confirmed = select(latest.c.SOPInstanceUID).where(latest.c.state == "confirmed")
    statement = (
        select(
            studies.c.StudyInstanceUID, patients.c.PatientID, patients.c.PatientName,
            studies.c.AccessionNumber, studies.c.StudyDate,
            func.count(instances.c.id).label("instances_missing"),
        )
        .select_from(
            instances.join(series, series.c.id == instances.c.series_pk)
            .join(studies, studies.c.id == series.c.study_pk)
            .join(patients, patients.c.id == studies.c.patient_pk)
        )
        .where(instances.c.SOPInstanceUID.not_in(confirmed))
        .group_by(studies.c.id, studies.c.StudyInstanceUID, patients.c.PatientID, patients.c.PatientName,
                  studies.c.AccessionNumber, studies.c.StudyDate)
        .order_by(studies.c.StudyDate.desc(), studies.c.id.desc())
    )
    return [dict(row._mapping) for row in conn.execute(statement)]
