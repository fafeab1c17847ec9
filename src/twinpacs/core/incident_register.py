"""The incident register: HIT incidents in the fields of the national incident databases (the
report) plus their analysis (HIT-CS problem types per report stage and consequence, workflow
steps, contributing and mitigating factors, outcomes, actions). Every change is a version: who
changed which fields from what to what, and when.

Field values (what `normalise` accepts; ids come from twinpacs.core.taxonomy):
  report:   event_date "YYYY-MM-DD" (required), event_time "HH:MM", subject (required),
            description (required, as reported), product, manufacturer, software_version,
            serial_batch, cause_investigation, measures, follow_up, risk_of_harm, underlying_cause
  analysis: problem_types {stage id: [problem type ids]} for the stages as_reported and
            after_investigation (an update replaces the stages it names, [] clears one);
            consequence (one id, or "" for none yet); workflow_steps [1..18];
            contributing_factors [{"id": factor id, "note": text}] (a bare id is short for
            {"id": id, "note": ""}); mitigating_factors [text]; patient_outcome, staff_outcome (text);
            actions [text]
  link:     source_draft (the incident draft it was taken over from, or null)
The weekday is derived from event_date, never entered, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Protocol

from ..errors import InvalidInput, NotFound
from .archive import utcnow
from .taxonomy import Taxonomy
from .text import check_text

TEXT_FIELDS = ("subject", "description", "product", "manufacturer", "software_version", "serial_batch",
               "cause_investigation", "measures", "follow_up", "risk_of_harm", "underlying_cause",
               "patient_outcome", "staff_outcome")
LIST_TEXT_FIELDS = ("mitigating_factors", "actions")
FIELDS = ("event_date", "event_time", "subject", "description", "product", "manufacturer", "software_version",
          "serial_batch", "cause_investigation", "measures", "follow_up", "risk_of_harm", "underlying_cause",
          "problem_types", "consequence", "workflow_steps", "contributing_factors", "mitigating_factors",
          "patient_outcome", "staff_outcome", "actions", "source_draft")
REQUIRED = ("event_date", "subject", "description")
ANALYSIS_FIELDS = ("problem_types", "consequence", "workflow_steps", "contributing_factors",
                   "mitigating_factors", "patient_outcome", "staff_outcome", "actions")


def empty_fields() -> dict[str, Any]:
    return {**{f: "" for f in (*TEXT_FIELDS, "event_date", "event_time", "consequence")},
            **{f: [] for f in (*LIST_TEXT_FIELDS, "workflow_steps", "contributing_factors")},
            "problem_types": {}, "source_draft": None}


@dataclass(frozen=True)
class IncidentVersion:
    version: int
    changed_at: datetime
    changed_by: str
    changes: dict[str, dict[str, Any]]  # field -> {"from": old, "to": new}

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "changed_at": self.changed_at.isoformat(),
                "changed_by": self.changed_by, "changes": self.changes}


@dataclass(frozen=True)
class Incident:
    id: int
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    fields: dict[str, Any]  # every name in FIELDS, normalised
    versions: tuple[IncidentVersion, ...] = field(default=())

    @property
    def weekday(self) -> str:
        return date.fromisoformat(self.fields["event_date"]).strftime("%A") if self.fields["event_date"] else ""

    def problem_types_for_rules(self) -> tuple[str, list[str]]:
        """The stage whose problem types the analysis rests on: after investigation when it has
        any (the investigation often reclassifies the report), else as reported."""
        pts = self.fields["problem_types"]
        stage = "after_investigation" if pts.get("after_investigation") else "as_reported"
        return stage, list(pts.get(stage, []))

    def as_dict(self, with_versions: bool = True) -> dict[str, Any]:
        out = {"id": self.id, "version": self.version, "created_at": self.created_at.isoformat(),
               "created_by": self.created_by, "updated_at": self.updated_at.isoformat(),
               "updated_by": self.updated_by, "event_weekday": self.weekday, **self.fields}
        if with_versions:
            out["versions"] = [v.as_dict() for v in self.versions]
        return out


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be text, not {type(value).__name__}")
    check_text(**{name: value})
    return value.strip()


def _text_list(name: str, value: Any) -> list[str]:
    if isinstance(value, str):  # one entry given as a string
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"{name} must be a list of texts")
    check_text(**{name: "".join(value)})
    return [v.strip() for v in value if v.strip()]


def _ids(name: str, value: Any, allowed: Mapping[str, Any]) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"{name} must be a list of ids; allowed: {', '.join(allowed)}")
    unknown = [v for v in value if v not in allowed]
    if unknown:
        raise InvalidInput(f"{name}: unknown id(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}")
    return list(dict.fromkeys(value))  # keep the analyst's order, drop repeats


def _value(name: str, value: Any, tax: Taxonomy) -> Any:
    if name in TEXT_FIELDS:
        return _text(name, value)
    if name in LIST_TEXT_FIELDS:
        return _text_list(name, value)
    if name == "event_date":
        text = _text(name, value)
        try:
            return date.fromisoformat(text).isoformat() if text else ""
        except ValueError:
            raise InvalidInput(f"event_date must be a date as YYYY-MM-DD, not {text!r}") from None
    if name == "event_time":
        text = _text(name, value)
        try:
            return time.fromisoformat(text).strftime("%H:%M") if text else ""
        except ValueError:
            raise InvalidInput(f"event_time must be a time as HH:MM, not {text!r}") from None
    if name == "consequence":
        text = _text(name, value)
        if text and text not in tax.consequences:
            raise InvalidInput(f"consequence: unknown id {text!r}; allowed: {', '.join(tax.consequences)}")
        return text
    if name == "problem_types":
        if not isinstance(value, dict):
            raise InvalidInput(f"problem_types must map a report stage ({', '.join(tax.stages)}) to a list of ids")
        unknown = [s for s in value if s not in tax.stages]
        if unknown:
            raise InvalidInput(f"problem_types: unknown report stage(s) {', '.join(map(repr, unknown))}; "
                               f"allowed: {', '.join(tax.stages)}")
        # Only the stages given: an update replaces those and keeps the others ([] clears one).
        return {s: _ids(f"problem_types.{s}", v, tax.problem_types) for s, v in value.items()}
    if name == "workflow_steps":
        values = value if isinstance(value, list) else [value]
        try:
            steps = [int(v) for v in values if not isinstance(v, bool)]
        except (TypeError, ValueError):
            steps = []
        if len(steps) != len(values) or any(s not in tax.workflow_steps for s in steps):
            raise InvalidInput(f"workflow_steps: {value!r} is not a list of step numbers; allowed: 1 to "
                               f"{max(tax.workflow_steps)}")
        return sorted(set(steps))
    if name == "contributing_factors":
        items = value if isinstance(value, list) else [value]
        out: list[dict[str, str]] = []
        for item in items:
            entry = {"id": item, "note": ""} if isinstance(item, str) else item
            if not isinstance(entry, dict) or set(entry) - {"id", "note"} or not isinstance(entry.get("id"), str):
                raise InvalidInput('contributing_factors: each is a factor id or {"id": ..., "note": ...}')
            _ids("contributing_factors", [entry["id"]], tax.contributing_factors)
            out.append({"id": entry["id"], "note": _text("contributing_factors note", entry.get("note", ""))})
        return out
    if name == "source_draft":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidInput("source_draft must be a draft id (an integer) or null")
        return value
    raise InvalidInput(f"unknown incident field {name!r}; allowed: {', '.join(FIELDS)}")


def normalise(changes: Mapping[str, Any], tax: Taxonomy) -> dict[str, Any]:
    """The given fields checked and in canonical form. Every problem is reported at once, each
    naming its field and the allowed values; nothing is stored when there is any."""
    out: dict[str, Any] = {}
    errors: list[str] = []
    for name, value in changes.items():
        try:
            out[name] = _value(name, value, tax)
        except InvalidInput as e:
            errors.append(e.message)
    if errors:
        raise InvalidInput("; ".join(errors))
    return out


def check_required(fields: Mapping[str, Any]) -> None:
    missing = [f for f in REQUIRED if not fields.get(f)]
    if missing:
        raise InvalidInput(f"an incident needs {', '.join(missing)} (required: {', '.join(REQUIRED)})")


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Field-level changes: {field: {"from": old, "to": new}} for each field that differs."""
    return {f: {"from": old.get(f), "to": new[f]} for f in FIELDS if f in new and old.get(f) != new[f]}


class RegisterStore(Protocol):
    def create(self, fields: dict[str, Any], changes: dict[str, dict[str, Any]], at: datetime,
               by: str) -> Incident: ...
    def update(self, incident_id: int, change: Callable[[Incident], dict[str, Any]], at: datetime,
               by: str) -> Incident | None: ...
    def get(self, incident_id: int) -> Incident | None: ...
    def list(self) -> list[Incident]: ...


class IncidentRegister:
    """add / update / get / list over a store. `update` hands the store a function that turns the
    current incident into the new fields, so reading, diffing and writing share one transaction."""

    def __init__(self, store: RegisterStore, taxonomy: Taxonomy, now: Callable[[], datetime] = utcnow) -> None:
        self._store = store
        self.taxonomy = taxonomy
        self._now = now

    def add(self, values: Mapping[str, Any], by: str) -> Incident:
        by = _actor(by)
        fields = self._merged(empty_fields(), normalise(values, self.taxonomy))
        check_required(fields)
        return self._store.create(fields, diff(empty_fields(), fields), self._now(), by)

    def update(self, incident_id: int, values: Mapping[str, Any], by: str) -> Incident:
        """Change the given fields; a version is recorded only when something actually changed."""
        by = _actor(by)
        given = normalise(values, self.taxonomy)

        def change(current: Incident) -> dict[str, Any]:
            fields = self._merged(current.fields, given)
            check_required(fields)
            return fields

        found = self._store.update(incident_id, change, self._now(), by)
        if found is None:
            raise NotFound(f"no incident {incident_id}")
        return found

    def _merged(self, current: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
        fields = {**current, **given}
        stages = {**current["problem_types"], **given.get("problem_types", {})}
        fields["problem_types"] = {s: stages[s] for s in self.taxonomy.stages if stages.get(s)}
        return fields

    def get(self, incident_id: int) -> Incident:
        found = self._store.get(incident_id)
        if found is None:
            raise NotFound(f"no incident {incident_id}")
        return found

    def list(self) -> list[Incident]:
        return self._store.list()


def _actor(by: str) -> str:
    if not isinstance(by, str) or not by.strip():
        raise InvalidInput("a change needs the name of who makes it (by)")
    return by.strip()[:128]


def from_draft(draft: Any, tax: Taxonomy) -> dict[str, Any]:
    """Register fields from an incident draft (core.incidents.IncidentDraft): its title,
    description, the event's date and time (UTC, as the archive recorded it), details, and its
    pre-classification as the 'as reported' stage. Ids the taxonomy does not know are left out rather than refused: the
    draft was written by the archive, and the analyst classifies anyway."""
    details = dict(getattr(draft, "details", {}) or {})
    classification = getattr(draft, "classification", None) or details.pop("classification", None) or {}
    created: datetime = draft.created_at
    extra = "\n".join([f"drafted by the archive at site {draft.site}", *(f"{k}: {v}" for k, v in details.items())])
    values: dict[str, Any] = {
        "subject": draft.title, "event_date": created.date().isoformat(),
        "event_time": created.strftime("%H:%M"),
        "description": f"{draft.description}\n\n{extra}",
        "source_draft": draft.id,
    }
    pts = [p for p in classification.get("problem_types", []) if p in tax.problem_types]
    if pts:
        values["problem_types"] = {"as_reported": pts}
    if classification.get("consequence") in tax.consequences:
        values["consequence"] = classification["consequence"]
    steps = [s for s in classification.get("workflow_steps", []) if isinstance(s, int) and s in tax.workflow_steps]
    if steps:
        values["workflow_steps"] = steps
    return values


def take_over(register: IncidentRegister, drafts: Any, draft_id: int, by: str,
              overrides: Mapping[str, Any] | None = None) -> Incident:
    """A new incident from an incident draft (`drafts`: core.incidents.IncidentDrafts), fields
    given in `overrides` replacing the draft's; the draft is then marked reviewed. A draft is
    taken over once."""
    draft = drafts.get(draft_id)
    incident = register.add({**from_draft(draft, register.taxonomy), **(overrides or {})}, by)
    drafts.review(draft_id, by.strip(), f"taken over into the incident register as incident {incident.id}")
    return incident
