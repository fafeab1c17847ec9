"""The prefetch tables (prefetch_jobs: one per scheduled order; prefetch_studies: one per prior
found at a source): queueing a job for an order, claiming the most urgent due one, settling an
attempt with its per-study outcomes in one transaction, the status an operator reads, and the
hit rate. Portable SQL; on PostgreSQL a claim skips jobs another node has locked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from ..core.prefetch import DONE, JOB_STATES, PENDING, PRIOR_STATES, RELEVANT_STATES, RUNNING, HitRate
from ..core.ris import Order, OrderStatus
from .database import Database
from .notices import as_utc
from .ris import order_from_row
from .schema import orders, prefetch_jobs, prefetch_studies, studies


@dataclass(frozen=True)
class Claimed:
    job_id: int
    claim: int  # the claim number a settlement must name
    attempts: int
    order: Order


@dataclass(frozen=True)
class PriorRow:
    """One prior study's outcome in an attempt, as recorded."""

    source: str
    study_uid: str
    study_date: str
    modalities: str
    description: str
    state: str
    reason: str
    instances: int = 0
    error: str = ""


def _due(now: datetime) -> Any:
    waiting = and_(prefetch_jobs.c.state == PENDING,
                   or_(prefetch_jobs.c.next_attempt_at.is_(None), prefetch_jobs.c.next_attempt_at <= now))
    # A running job whose lease ran out was left by a worker that died: claim it again.
    abandoned = and_(prefetch_jobs.c.state == RUNNING, prefetch_jobs.c.next_attempt_at <= now)
    return or_(waiting, abandoned)


class SqlPrefetch:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- the queue -------------------------------------------------------------------------

    def schedule(self, order: Order, now: datetime) -> None:
        """The order's job, new or searched again from scratch (the order may have changed)."""
        values = {"priority": order.priority.rank, "state": PENDING, "attempts": 0, "next_attempt_at": now,
                  "updated_at": now, "detail": ""}

        def work(conn: Connection) -> None:
            done = conn.execute(update(prefetch_jobs).where(prefetch_jobs.c.order_id == order.id)
                                .values(**values, claims=prefetch_jobs.c.claims + 1))
            if done.rowcount == 0:
                conn.execute(insert(prefetch_jobs).values(order_id=order.id, created_at=now, **values))
        self.db.write(work)

    def drop_pending(self, order_id: int) -> int:
        """A cancelled order's job, if it has not run to an end, with what it recorded."""
        def work(conn: Connection) -> int:
            ids = [r[0] for r in conn.execute(select(prefetch_jobs.c.id).where(
                prefetch_jobs.c.order_id == order_id, prefetch_jobs.c.state == PENDING))]
            if ids:
                conn.execute(delete(prefetch_studies).where(prefetch_studies.c.job_id.in_(ids)))
                conn.execute(delete(prefetch_jobs).where(prefetch_jobs.c.id.in_(ids)))
            return len(ids)
        return self.db.write(work)

    def has_due(self, now: datetime) -> bool:
        with self.db.read() as conn:
            return conn.execute(select(prefetch_jobs.c.id).where(_due(now)).limit(1)).first() is not None

    def next_due(self) -> datetime | None:
        statement = select(func.min(prefetch_jobs.c.next_attempt_at)).where(
            prefetch_jobs.c.state.in_([PENDING, RUNNING]))
        with self.db.read() as conn:
            return as_utc(conn.execute(statement).scalar())

    def claim(self, now: datetime, lease_until: datetime) -> Claimed | None:
        """The most urgent due job: highest priority (STAT first), then the earliest scheduled
        time (unscheduled last), then the oldest; leased until `lease_until`."""
        def work(conn: Connection) -> Claimed | None:
            statement = (select(prefetch_jobs.c.id, prefetch_jobs.c.claims, prefetch_jobs.c.attempts,
                                prefetch_jobs.c.order_id)
                         .join(orders, orders.c.id == prefetch_jobs.c.order_id).where(_due(now))
                         .order_by(prefetch_jobs.c.priority.desc(), orders.c.scheduled_at.is_(None),
                                   orders.c.scheduled_at, prefetch_jobs.c.id).limit(1))
            if not self.db.is_sqlite:  # SQLite has one writer at a time: nothing to skip
                statement = statement.with_for_update(of=prefetch_jobs, skip_locked=True)
            row = conn.execute(statement).first()
            if row is None:
                return None
            conn.execute(update(prefetch_jobs).where(prefetch_jobs.c.id == row.id).values(
                state=RUNNING, claims=row.claims + 1, next_attempt_at=lease_until, updated_at=now))
            order = order_from_row(conn.execute(select(orders).where(orders.c.id == row.order_id)).one())
            return Claimed(row.id, row.claims + 1, row.attempts, order)
        return self.db.write(work)

    def settle(self, claimed: Claimed, state: str, attempts: int, next_attempt_at: datetime | None,
               detail: str, rows: Sequence[PriorRow], sources_searched: Sequence[str], now: datetime) -> bool:
        """Record an attempt in one transaction: the job's new state, and the priors found at
        each source searched (replacing that source's earlier rows; a source that could not be
        searched keeps what an earlier attempt recorded). Nothing is written if the job was
        claimed again or rescheduled meanwhile (False); a job that would wait for a retry while
        its order has been cancelled is dropped instead."""
        def work(conn: Connection) -> bool:
            job = conn.execute(select(prefetch_jobs.c.state, prefetch_jobs.c.claims, orders.c.status)
                               .join(orders, orders.c.id == prefetch_jobs.c.order_id)
                               .where(prefetch_jobs.c.id == claimed.job_id)).first()
            if job is None or job.state != RUNNING or job.claims != claimed.claim:
                return False
            if state == PENDING and job.status == OrderStatus.CANCELLED.value:
                conn.execute(delete(prefetch_studies).where(prefetch_studies.c.job_id == claimed.job_id))
                conn.execute(delete(prefetch_jobs).where(prefetch_jobs.c.id == claimed.job_id))
                return True
            if sources_searched:
                conn.execute(delete(prefetch_studies).where(prefetch_studies.c.job_id == claimed.job_id,
                                                            prefetch_studies.c.source.in_(list(sources_searched))))
            if rows:
                conn.execute(insert(prefetch_studies), [
                    {"job_id": claimed.job_id, "source": r.source[:64], "StudyInstanceUID": r.study_uid[:64],
                     "StudyDate": r.study_date[:16], "modalities": r.modalities[:64],
                     "description": r.description[:256], "state": r.state, "reason": r.reason,
                     "instances": r.instances, "error": r.error, "updated_at": now} for r in rows])
            conn.execute(update(prefetch_jobs).where(prefetch_jobs.c.id == claimed.job_id).values(
                state=state, attempts=attempts, next_attempt_at=next_attempt_at, detail=detail, updated_at=now))
            return True
        return self.db.write(work)

    def held(self, study_uids: Sequence[str]) -> dict[str, int]:
        """Instances this site holds of each of the studies (absent: none)."""
        if not study_uids:
            return {}
        with self.db.read() as conn:
            return {uid: int(n) for uid, n in conn.execute(
                select(studies.c.StudyInstanceUID, studies.c.num_instances)
                .where(studies.c.StudyInstanceUID.in_(list(set(study_uids)))))}

    # -- the hit rate ----------------------------------------------------------------------

    def record_opened(self, study_uid: str, now: datetime) -> bool:
        """A viewer asked for the study's metadata. If the study belongs to an order with a
        prefetch job not yet marked opened, mark it: a hit when the job had run to its end and
        every relevant prior is held here now (as many instances as the source reported).
        True when the job is (now or before) marked opened, False when there is none."""
        job_of_study = (select(prefetch_jobs.c.id, prefetch_jobs.c.state, prefetch_jobs.c.opened_at)
                        .join(orders, orders.c.id == prefetch_jobs.c.order_id)
                        .join(studies, studies.c.AccessionNumber == orders.c.accession_number)
                        .where(studies.c.StudyInstanceUID == study_uid, studies.c.AccessionNumber != ""))
        with self.db.read() as conn:  # a read first: most studies opened need no write
            job = conn.execute(job_of_study).first()
        if job is None:
            return False
        if job.opened_at is not None:
            return True

        def work(conn: Connection) -> bool:
            relevant = conn.execute(select(prefetch_studies.c.StudyInstanceUID, prefetch_studies.c.instances).where(
                prefetch_studies.c.job_id == job.id, prefetch_studies.c.state.in_(RELEVANT_STATES))).all()
            held = {uid: n for uid, n in conn.execute(
                select(studies.c.StudyInstanceUID, studies.c.num_instances)
                .where(studies.c.StudyInstanceUID.in_([r[0] for r in relevant])))} if relevant else {}
            missing = sum(1 for uid, wanted in relevant if held.get(uid, 0) < max(1, wanted))
            state = conn.execute(select(prefetch_jobs.c.state).where(prefetch_jobs.c.id == job.id)).scalar()
            conn.execute(update(prefetch_jobs).where(prefetch_jobs.c.id == job.id,
                                                     prefetch_jobs.c.opened_at.is_(None)).values(
                opened_at=now, opened_study=study_uid[:64], opened_hit=state == DONE and missing == 0,
                opened_missing=missing))
            return True
        return self.db.write(work)

    def hit_rate(self) -> HitRate:
        statement = select(func.count(prefetch_jobs.c.opened_at),
                           func.coalesce(func.sum(case((prefetch_jobs.c.opened_hit.is_(True), 1), else_=0)), 0))
        with self.db.read() as conn:
            opened, hits = conn.execute(statement).one()
        return HitRate(int(opened), int(hits))

    # -- what an operator reads ------------------------------------------------------------

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Jobs per state and priors per state (every state present, zeros included)."""
        with self.db.read() as conn:
            jobs = dict(conn.execute(select(prefetch_jobs.c.state, func.count()).group_by(prefetch_jobs.c.state)).all())
            priors = dict(conn.execute(select(prefetch_studies.c.state, func.count())
                                       .group_by(prefetch_studies.c.state)).all())
        return ({s: int(jobs.get(s, 0)) for s in JOB_STATES}, {s: int(priors.get(s, 0)) for s in PRIOR_STATES})

    def status(self, limit: int = 100, accession_number: str | None = None) -> list[dict[str, Any]]:
        """Per order with a job: the order, the job, and every prior found with its outcome.
        Jobs still to run or given up on come first, in the order the worker takes them."""
        statement = (select(prefetch_jobs, orders.c.id.label("oid"))
                     .join(orders, orders.c.id == prefetch_jobs.c.order_id)
                     .order_by(prefetch_jobs.c.state == DONE, prefetch_jobs.c.priority.desc(),
                               orders.c.scheduled_at.is_(None), orders.c.scheduled_at, prefetch_jobs.c.id)
                     .limit(limit))
        if accession_number is not None:
            statement = statement.where(orders.c.accession_number == accession_number)
        with self.db.read() as conn:
            jobs = conn.execute(statement).all()
            order_rows = {r.id: order_from_row(r) for r in conn.execute(
                select(orders).where(orders.c.id.in_([j.order_id for j in jobs])))} if jobs else {}
            prior_rows = conn.execute(
                select(prefetch_studies).where(prefetch_studies.c.job_id.in_([j.id for j in jobs]))
                .order_by(prefetch_studies.c.StudyDate.desc(), prefetch_studies.c.id)).all() if jobs else []
        priors: dict[int, list[dict[str, Any]]] = {}
        for p in prior_rows:
            priors.setdefault(p.job_id, []).append({
                "source": p.source, "study_instance_uid": p.StudyInstanceUID, "study_date": p.StudyDate,
                "modalities": p.modalities, "description": p.description, "state": p.state,
                "reason": p.reason, "error": p.error, "instances": p.instances})
        return [_job_dict(j, order_rows[j.order_id], priors.get(j.id, [])) for j in jobs]


def _job_dict(job: Any, order: Order, priors: list[dict[str, Any]]) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        value = as_utc(value)
        return value.isoformat() if value else None

    return {
        "order": {"placer_number": order.placer_number, "accession_number": order.accession_number,
                  "patient_id": order.patient.patient_id, "patient_name": order.patient.name,
                  "priority": order.priority.value, "scheduled_at": iso(order.scheduled_at),
                  "modality": order.modality, "body_part": order.body_part, "status": order.status.value},
        "job": {"state": job.state, "attempts": job.attempts,
                "next_attempt_at": iso(job.next_attempt_at) if job.state in (PENDING, RUNNING) else None,
                "updated_at": iso(job.updated_at), "detail": job.detail, "opened_at": iso(job.opened_at),
                "opened_hit": job.opened_hit, "opened_missing": job.opened_missing},
        "counts": {state: sum(1 for p in priors if p["state"] == state) for state in PRIOR_STATES},
        "priors": priors,
    }

