"""The prefetch worker (G9): a thread that takes the most urgent due job (STAT orders first, then
the earliest scheduled), searches every configured source for the patient's studies, applies
the rules (core/prefetch.py), fetches the chosen priors that are not held here yet, and records
each study's outcome. A failed attempt (a source down, a fetch short) is tried again after
prefetch.retry_s, up to prefetch.give_up_after attempts, then shown as failed. A new or changed
order wakes it at once (`order_changed` is a Ris.on_order listener)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .core.archive import utcnow
from .core.prefetch import (
    CHOSEN,
    DONE,
    FAILED,
    FETCHED,
    LOCAL,
    NOT_RELEVANT,
    PENDING,
    Candidate,
    Decision,
    Rules,
    choose,
    needs_series_details,
)
from .core.ris import Order, OrderStatus
from .index.prefetch import Claimed, PriorRow, SqlPrefetch
from .prefetch_sources import PriorSource, SourceError, make_source

if TYPE_CHECKING:
    from .app import Site

log = logging.getLogger(__name__)

# A claimed job is hidden from other claimers this long; it must outlast one job's fetches. A
# process that dies mid-job leaves it running, taken again once the lease has run out.
LEASE = timedelta(minutes=30)
IDLE_WAIT_S = 1.0  # the longest the worker sleeps without looking for due jobs (or a stop)
STOP_JOIN_S = 15.0  # stop() waits this long for a fetch in flight


@dataclass(frozen=True)
class Policy:
    retry_s: float = 60.0
    give_up_after: int = 5


@dataclass(frozen=True)
class Attempt:
    """What one attempt at a job found and did."""

    rows: list[PriorRow]
    searched: list[str]  # sources whose search answered
    errors: list[str]  # per source that could not be searched
    interrupted: bool = False  # a stop came before every chosen prior was fetched


class PrefetchWorker:
    def __init__(self, jobs: SqlPrefetch, sources: Sequence[PriorSource], rules: Rules, policy: Policy,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.jobs = jobs
        self.sources = list(sources)
        self.rules = rules
        self.policy = policy
        self.clock = clock
        self.wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def order_changed(self, order: Order) -> None:
        """A scheduled order gets its job (searched again if the order changed), and the
        worker looks at once; a cancelled order's job that has not run to an end is dropped."""
        if order.status is OrderStatus.SCHEDULED:
            self.jobs.schedule(order, self.clock())
            self.wake.set()
        elif order.status is OrderStatus.CANCELLED:
            self.jobs.drop_pending(order.id)

    def run_once(self) -> bool:
        """Run the most urgent due job, if any; whether one was run."""
        now = self.clock()
        if not self.jobs.has_due(now):  # a read: no write lock while idle
            return False
        claimed = self.jobs.claim(now, now + LEASE)
        if claimed is None:
            return False
        attempt = self._attempt(claimed)
        self._settle(claimed, attempt)
        return True

    def _attempt(self, claimed: Claimed) -> Attempt:
        order = claimed.order
        details = needs_series_details(order, self.rules)
        candidates: list[Candidate] = []
        searched: list[str] = []
        errors: list[str] = []
        for source in self.sources:
            try:
                candidates += source.find(order.patient.patient_id, details)
                searched.append(source.name)
            except SourceError as exc:
                errors.append(f"{source.name}: {exc}")
            except Exception as exc:  # an adapter's bug must not hide the other sources' priors
                log.exception("prefetch: searching %s failed", source.name)
                errors.append(f"{source.name}: {type(exc).__name__}: {exc}")
        held = self.jobs.held([c.study_uid for c in candidates])
        local = {c.study_uid for c in candidates if held.get(c.study_uid, 0) >= max(1, c.instances)}
        rows = []
        interrupted = False
        for decision in choose(order, candidates, self.rules, local, self.clock()):
            if decision.state != CHOSEN:
                rows.append(_row(decision, decision.state))
            elif self._stopping.is_set():
                interrupted = True
                rows.append(_row(decision, CHOSEN))
            else:
                rows.append(self._fetch(decision))
        return Attempt(rows, searched, errors, interrupted)

    def _fetch(self, decision: Decision) -> PriorRow:
        c = decision.candidate
        source = next(s for s in self.sources if s.name == c.source)
        try:
            note = source.fetch(c)
        except SourceError as exc:
            return _row(decision, FAILED, str(exc))
        except Exception as exc:
            log.exception("prefetch: fetching %s from %s failed", c.study_uid, c.source)
            return _row(decision, FAILED, f"{type(exc).__name__}: {exc}")
        have = self.jobs.held([c.study_uid]).get(c.study_uid, 0)
        if have >= max(1, c.instances):
            return _row(decision, FETCHED)
        expected = str(c.instances) if c.instances else "an unknown number of"
        return _row(decision, FAILED, f"{note}; this site holds {have} of its {expected} instances")

    def _settle(self, claimed: Claimed, attempt: Attempt) -> None:
        now = self.clock()
        failed = [r for r in attempt.rows if r.state == FAILED]
        problems = attempt.errors + ([f"{len(failed)} chosen prior(s) not fetched, the first "
                                      f"({failed[0].study_uid} from {failed[0].source}): {failed[0].error}"]
                                     if failed else [])
        attempts = claimed.attempts + 1
        next_at: datetime | None = None
        if attempt.interrupted:
            state, attempts, next_at = PENDING, claimed.attempts, now
            detail = "interrupted by a stop before every chosen prior was fetched; resumed at the next start"
        elif not problems:
            state, detail = DONE, _summary(attempt)
        elif attempts >= self.policy.give_up_after:
            state, detail = FAILED, f"gave up after {_attempts(attempts)}: {'; '.join(problems)}"
        else:
            state, next_at = PENDING, now + timedelta(seconds=self.policy.retry_s)
            detail = f"attempt {attempts} of {self.policy.give_up_after} failed: {'; '.join(problems)}"
        settled = self.jobs.settle(claimed, state, attempts, next_at, detail, attempt.rows, attempt.searched, now)
        if not settled:  # the order changed meanwhile: its job starts again from scratch
            log.info("prefetch for order %s: rescheduled while running; this attempt is not recorded",
                     claimed.order.placer_number)
        elif problems:
            log.warning("prefetch for order %s: %s", claimed.order.placer_number, detail)

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="prefetch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Prompt unless a fetch is in flight; a job cut short goes back to pending, its
        fetched priors recorded."""
        self._stopping.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(STOP_JOIN_S)
            if self._thread.is_alive():
                log.warning("prefetch: a fetch is still in flight at stop")
        for source in self.sources:
            source.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.wake.clear()  # before looking, so an order placed during a job wakes us again
            try:
                if self.run_once():
                    continue
                wait = self._until_next_due()
            except Exception:  # e.g. the database is briefly unavailable: log, wait, go on
                log.exception("prefetch: a job failed")
                wait = IDLE_WAIT_S
            self.wake.wait(wait)

    def _until_next_due(self) -> float:
        due = self.jobs.next_due()
        if due is None:
            return IDLE_WAIT_S
        return min(IDLE_WAIT_S, max(0.0, (due - self.clock()).total_seconds()))


def _row(decision: Decision, state: str, error: str = "") -> PriorRow:
    c = decision.candidate
    return PriorRow(c.source, c.study_uid, c.study_date, "\\".join(c.modalities), c.description, state,
                    decision.reason, c.instances, error)


def _attempts(n: int) -> str:
    return f"{n} attempt" if n == 1 else f"{n} attempts"


def _summary(attempt: Attempt) -> str:
    def count(state: str) -> int:
        return sum(1 for r in attempt.rows if r.state == state)

    return (f"{len(attempt.rows)} studies found at {len(attempt.searched)} source(s): {count(FETCHED)} fetched, "
            f"{count(LOCAL)} already here, {count(NOT_RELEVANT)} not relevant")


def build_worker(site: Site) -> PrefetchWorker:
    """The worker for the site's [prefetch] settings (sources, rules, retries)."""
    p = site.settings.prefetch
    sources = [make_source(s, site.settings.dicom, site.ae_title, site.archive) for s in p.sources]
    return PrefetchWorker(SqlPrefetch(site.index.db), sources,
                          Rules(p.same_modality, p.same_body_part, p.within_years, p.max_studies),
                          Policy(p.retry_s, p.give_up_after))
