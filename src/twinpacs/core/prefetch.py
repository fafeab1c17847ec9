"""Prefetching of priors (G9): which of a patient's earlier studies, found in other archives,
are worth fetching before the scheduled exam. The rules are one pure function, `choose`, so
they can be read, tested and documented as one thing; the worker (prefetch_worker.py) finds
the candidates, fetches what is chosen and records every decision with its reason.

A job's life (one per scheduled order):

    pending --claimed, STAT first, then the earliest scheduled--> running
    running --every source searched, every chosen prior held here--> done
    running --a source unreachable or a fetch failed, attempts < give_up_after--> pending (retry_s later)
    running --the same at attempts = give_up_after--> failed (the errors kept, shown in status)
    any --the order changed--> pending (searched and chosen again)
    pending --the order cancelled--> dropped

Each prior found is recorded as chosen (to fetch) -> fetched | failed, or local (relevant and
already held here), or not-relevant (with the rule that excluded it)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from .ris import Order
from .sync import truncated_percent

# States of a prior study found at a source.
CHOSEN, FETCHED, FAILED, LOCAL, NOT_RELEVANT = "chosen", "fetched", "failed", "local", "not-relevant"
PRIOR_STATES = (CHOSEN, FETCHED, FAILED, LOCAL, NOT_RELEVANT)
RELEVANT_STATES = (CHOSEN, FETCHED, FAILED, LOCAL)  # what the rules selected
# States of a job (FAILED as above: given up after the last attempt).
PENDING, RUNNING, DONE = "pending", "running", "done"
JOB_STATES = (PENDING, RUNNING, DONE, FAILED)


@dataclass(frozen=True)
class Candidate:
    """A study of the patient as a source archive described it (C-FIND or QIDO-RS)."""

    source: str
    study_uid: str
    patient_id: str = ""
    accession_number: str = ""
    study_date: str = ""  # YYYYMMDD as the source gave it
    study_time: str = ""
    modalities: tuple[str, ...] = ()  # ModalitiesInStudy (or the series' Modality)
    body_parts: tuple[str, ...] = ()  # the series' BodyPartExamined, when asked for
    description: str = ""
    instances: int = 0  # NumberOfStudyRelatedInstances; 0: the source did not say
    sop_classes: tuple[str, ...] = ()  # SOPClassesInStudy, for C-GET's storage contexts


@dataclass(frozen=True)
class Rules:
    same_modality: bool = True
    same_body_part: bool = False
    within_years: int = 5  # 0: any age
    max_studies: int = 3


@dataclass(frozen=True)
class Decision:
    candidate: Candidate
    state: str  # CHOSEN, LOCAL or NOT_RELEVANT
    reason: str


def needs_series_details(order: Order, rules: Rules) -> bool:
    """Whether the body part rule applies, so sources must be asked at series level."""
    return rules.same_body_part and bool(order.body_part.strip())


def choose(order: Order, candidates: Iterable[Candidate], rules: Rules, local: set[str],
           now: datetime) -> list[Decision]:
    """Decide for every candidate, most recent first. `local` holds the Study Instance UIDs this
    site already holds completely; they count as present and are never fetched again.

    1. A study found at several sources is taken from the first source listed.
    2. Another patient's study (PatientID differs) and the order's own study (its accession
       number) are not priors.
    3. The reference time is the order's scheduled time, or now if it has none. A study dated
       after it is not a prior. With within_years = N > 0, a study older than N years before it
       is not relevant, nor one without a readable StudyDate (its age is unknown).
    4. same_modality: the study's modalities include the order's (skipped when the order has no
       modality; a study whose source gave no modality is not relevant).
    5. same_body_part: a body part of the study equals the order's, ignoring case (applied only
       when both the order and the source name one).
    6. Of the studies left, the max_studies most recent (StudyDate, then StudyTime) are relevant:
       local when held here, else chosen for fetching. The rest are beyond max_studies."""
    reference = (order.scheduled_at or now).date()
    excluded: list[Decision] = []
    kept: list[Candidate] = []
    first_source: dict[str, str] = {}
    for candidate in candidates:
        if candidate.study_uid in first_source:
            excluded.append(Decision(candidate, NOT_RELEVANT,
                                      f"the same study is taken from source {first_source[candidate.study_uid]}"))
            continue
        first_source[candidate.study_uid] = candidate.source
        reason = _excluded(order, candidate, rules, reference)
        if reason:
            excluded.append(Decision(candidate, NOT_RELEVANT, reason))
        else:
            kept.append(candidate)
    kept.sort(key=_recency, reverse=True)
    decisions: list[Decision] = []
    for rank, candidate in enumerate(kept, 1):
        if rank > rules.max_studies:
            decisions.append(Decision(candidate, NOT_RELEVANT,
                                      f"beyond the {rules.max_studies} most recent relevant studies (max_studies)"))
        elif candidate.study_uid in local:
            decisions.append(Decision(candidate, LOCAL, f"relevant (most recent #{rank}); already held here"))
        else:
            decisions.append(Decision(candidate, CHOSEN, f"relevant (most recent #{rank})"))
    # Most recent first; a stable sort keeps the relevant before the excluded on the same day.
    return sorted([*decisions, *excluded], key=lambda d: _recency(d.candidate), reverse=True)


def _excluded(order: Order, c: Candidate, rules: Rules, reference: date) -> str:
    """The first rule that excludes the candidate, as a reason; "" when none does."""
    if c.patient_id and c.patient_id != order.patient.patient_id:
        return f"another patient (PatientID {c.patient_id})"
    if c.accession_number and c.accession_number == order.accession_number:
        return f"the order's own study (accession {c.accession_number})"
    studied = study_date(c.study_date)
    if studied is None:
        if rules.within_years:
            return f"no readable StudyDate ({c.study_date!r}): its age cannot be checked (within_years)"
    elif studied > reference:
        return f"dated {c.study_date}, after the order's scheduled date {reference:%Y%m%d}: not a prior"
    elif rules.within_years and studied < years_before(reference, rules.within_years):
        return (f"older than {rules.within_years} years (StudyDate {c.study_date}, before "
                f"{years_before(reference, rules.within_years):%Y%m%d}; within_years)")
    wanted = order.modality.strip().upper()
    if rules.same_modality and wanted:
        found = [m.upper() for m in c.modalities]
        if not found:
            return f"the source gave no modality; the order is {wanted} (same_modality)"
        if wanted not in found:
            return f"other modality ({'/'.join(found)}; the order is {wanted}; same_modality)"
    part = order.body_part.strip().upper()
    if rules.same_body_part and part and c.body_parts:
        parts = [p.upper() for p in c.body_parts]
        if part not in parts:
            return f"other body part ({'/'.join(parts)}; the order is {part}; same_body_part)"
    return ""


def study_date(value: str) -> date | None:
    try:
        return datetime.strptime(value.strip(), "%Y%m%d").date()
    except ValueError:
        return None


def years_before(day: date, years: int) -> date:
    """The same calendar day `years` earlier (29 February becomes the 28th)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _recency(c: Candidate) -> tuple[str, str, str]:
    # YYYYMMDD and HHMMSS sort as text; an unknown date sorts last; the UID makes ties stable.
    return (c.study_date.strip() if study_date(c.study_date) else "", c.study_time.strip(), c.study_uid)


@dataclass(frozen=True)
class HitRate:
    """Studies opened (first study metadata request) whose order has a prefetch job, and of
    those, the ones whose relevant priors were all held here at that moment."""

    opened: int
    hits: int

    @property
    def rate(self) -> float:
        """hits / opened truncated to six decimals: never rounded up, so below 1 unless all hit."""
        return (self.hits * 10**6 // self.opened) / 10**6 if self.opened else 0.0

    def as_dict(self) -> dict[str, object]:
        return {"opened": self.opened, "hits": self.hits, "misses": self.opened - self.hits,
                "rate": self.rate, "percent": truncated_percent(self.hits, self.opened,
                                                                self.opened > 0 and self.hits == self.opened)}
