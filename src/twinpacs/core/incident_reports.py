"""Counts of incidents by HIT-CS problem type, consequence, workflow step and month: what the
report charts draw and the CSV/JSON exports carry. Pure: incidents in, counts out.

An incident counts once in each problem type and each step it carries (an incident usually has
several), once under its consequence, and once under the month of its event. Problem types are
those of the stage the analysis rests on (after investigation when it has any, else as
reported: `Incident.problem_types_for_rules`). Incidents not yet classified on an axis count
under "" ("not classified") on that axis, so every axis of consequences and months adds up to
the total."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from .incident_register import Incident
from .taxonomy import Taxonomy

DIMENSIONS = ("problem_types", "consequences", "workflow_steps", "months")
NOT_CLASSIFIED = "not classified"


@dataclass(frozen=True)
class IncidentFacts:
    """What the reports need of an incident."""
    event_date: date | None
    problem_types: tuple[str, ...] = ()
    consequence: str = ""
    workflow_steps: tuple[int, ...] = ()

    @classmethod
    def of(cls, incident: Incident) -> IncidentFacts:
        f = incident.fields
        return cls(date.fromisoformat(f["event_date"]) if f["event_date"] else None,
                   tuple(incident.problem_types_for_rules()[1]), f["consequence"], tuple(f["workflow_steps"]))


@dataclass(frozen=True)
class Bar:
    key: str  # the id; a step number or a month "YYYY-MM" as text; "" = not classified
    label: str
    count: int

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "count": self.count}


@dataclass(frozen=True)
class IncidentReport:
    total: int
    bars: dict[str, tuple[Bar, ...]]  # dimension -> bars, in the taxonomy's order (months in time order)

    def counts(self, dimension: str) -> dict[str, int]:
        return {b.key: b.count for b in self.bars[dimension]}

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, **{d: [b.as_dict() for b in self.bars[d]] for d in DIMENSIONS}}

    def to_csv(self) -> str:
        """One row per bar: dimension, key, label, count."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["dimension", "key", "label", "count"])
        writer.writerow(["total", "", "all incidents", self.total])
        for d in DIMENSIONS:
            writer.writerows([d, b.key, b.label, b.count] for b in self.bars[d])
        return buffer.getvalue()


def _bars(counts: Counter[str], labels: dict[str, str], keep_zero: bool) -> tuple[Bar, ...]:
    """The taxonomy's entries in its order (those with no incident only if `keep_zero`), then
    ids the taxonomy no longer has (older records), then the not classified."""
    known = [Bar(k, label, counts[k]) for k, label in labels.items() if keep_zero or counts[k]]
    unknown = [Bar(k, k, n) for k, n in sorted(counts.items()) if k and k not in labels]
    none = [Bar("", NOT_CLASSIFIED, counts[""])] if counts[""] else []
    return tuple(known + unknown + none)


def _months(dates: list[date | None]) -> tuple[Bar, ...]:
    """Every month from the first event to the last, empty ones too, so gaps show."""
    counts = Counter(d.strftime("%Y-%m") if d else "" for d in dates)
    known = sorted(d for d in dates if d)
    months: dict[str, str] = {}
    if known:
        year, month = known[0].year, known[0].month
        while (year, month) <= (known[-1].year, known[-1].month):
            months[f"{year:04d}-{month:02d}"] = date(year, month, 1).strftime("%b %Y")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return _bars(counts, months, keep_zero=True)


def count_incidents(incidents: Iterable[IncidentFacts], tax: Taxonomy) -> IncidentReport:
    facts = list(incidents)
    problems: Counter[str] = Counter()
    steps: Counter[str] = Counter()
    for f in facts:
        problems.update(set(f.problem_types) or {""})
        steps.update({str(s) for s in f.workflow_steps} or {""})
    consequences = Counter(f.consequence for f in facts)
    return IncidentReport(len(facts), {
        "problem_types": _bars(problems, {p.id: p.label for p in tax.problem_types.values()}, keep_zero=False),
        "consequences": _bars(consequences, {c.id: c.label for c in tax.consequences.values()}, keep_zero=True),
        "workflow_steps": _bars(steps, {str(n): f"{n}. {s.name}" for n, s in tax.workflow_steps.items()},
                                keep_zero=False),
        "months": _months([f.event_date for f in facts]),
    })
