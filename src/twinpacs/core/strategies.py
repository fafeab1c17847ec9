"""Which of the 16 preventive and corrective strategies apply to a classified incident, each with
the reason it was selected.

The rules are data: the `[[rule]]` entries of taxonomy/strategies.toml. A rule names a strategy
and conditions on the incident's classification:

  problem_types         HIT-CS problem type ids (of the stage the analysis rests on: after
                        investigation when that stage has any, else as reported)
  workflow_steps        step numbers 1-18
  factors               contributing factor ids
  consequences          consequence ids
  consequence_at_least  a consequence id: it, or any more severe one

`match = "any"` (the default) fires when any listed item is present; `match = "all"` fires only
when every kind of condition listed has a hit (e.g. T2: a use error AND a change of systems).
A strategy is recommended when at least one of its rules fires; each firing rule gives one reason:
the rule's text plus the exact triggers found (e.g. "problem type S.configuration (System
configuration), after investigation"). Strategies come out in the order of the data file
(P1..P4, T1, T2, C1..C4, D1..D6).

The shipped rules, in short:
  P1  factor system_upgrade or vendor_coordination
  P2  problem type S.interface_software / S.interface_devices; step 11; factor vendor_coordination
  P3  problem type S.configuration / S.functionality
  P4  problem type S.record_migration; factor system_upgrade or failover
  T1  problem type H.* ; factor staffing_training or unfamiliar_system
  T2  problem type H.* AND factor system_upgrade, resource_exhaustion or failover
  C1  problem type S.not_accessible / S.network_server / S.storage_backup / M.output_none;
      factor failover or replication_gap
  C2  consequence noticeable_no_harm or more severe (near_miss, harm, death)
  C3  problem type S.network_server / S.transaction_volume; factor prolonged_disruption
  C4  problem type S.not_accessible / S.network_server / M.output_none / M.output_delayed;
      factor failover or downtime_not_communicated
  D1  problem type S.interface_software; step 11
  D2  problem type H.entry_retrieval_wrong; factor unfamiliar_system
  D3  steps 9, 10; factor cognitive_load
  D4  problem type S.record_migration; factor terminology_mismatch
  D5  problem type M.output_wrong; step 17; factor misleading_status
  D6  steps 12, 13; factor missing_priors or replication_gap

The seed case (S.configuration; noticeable_no_harm; steps 10-12; factors system_upgrade, failover,
replication_gap, misleading_status) gets P1 P2 P3 P4, C1 C2 C4, D1 D3 D5 D6.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .incident_register import Incident
from .taxonomy import Rule, Strategy, Taxonomy


@dataclass(frozen=True)
class Classification:
    problem_types: tuple[str, ...] = ()
    stage: str = "as_reported"  # which report stage the problem types come from
    consequence: str = ""
    workflow_steps: tuple[int, ...] = ()
    factors: tuple[str, ...] = ()

    @classmethod
    def of(cls, incident: Incident) -> Classification:
        stage, pts = incident.problem_types_for_rules()
        f = incident.fields
        return cls(tuple(pts), stage, f["consequence"], tuple(f["workflow_steps"]),
                   tuple(c["id"] for c in f["contributing_factors"]))


@dataclass(frozen=True)
class Reason:
    text: str  # why the strategy answers these triggers (the rule's reason)
    triggers: tuple[str, ...]  # what in the classification fired the rule

    def as_dict(self) -> dict[str, object]:
        return {"text": self.text, "triggers": list(self.triggers)}


@dataclass(frozen=True)
class Recommendation:
    strategy: Strategy
    reasons: tuple[Reason, ...]

    def as_dict(self) -> dict[str, object]:
        s = self.strategy
        return {"id": s.id, "area": s.area, "area_name": s.area_name, "text": s.text,
                "in_twinpacs": s.in_twinpacs, "reasons": [r.as_dict() for r in self.reasons]}


def _hits(rule: Rule, c: Classification, tax: Taxonomy) -> list[list[str]]:
    """Per kind of condition the rule lists: the triggers found (an empty list: none found)."""
    stage = tax.stages[c.stage].label.lower() if c.stage in tax.stages else c.stage
    kinds: list[list[str]] = []
    if rule.problem_types:
        kinds.append([f"problem type {p} ({tax.problem_types[p].label}), {stage}"
                      for p in c.problem_types if p in rule.problem_types])
    if rule.workflow_steps:
        kinds.append([f"workflow step {n} ({tax.workflow_steps[n].name})"
                      for n in c.workflow_steps if n in rule.workflow_steps])
    if rule.factors:
        kinds.append([f"contributing factor {f} ({tax.contributing_factors[f].label})"
                      for f in c.factors if f in rule.factors])
    if rule.consequences or rule.consequence_at_least:
        allowed = set(rule.consequences)
        if rule.consequence_at_least:
            allowed |= tax.severity_at_least(rule.consequence_at_least)
        kinds.append([f"consequence {c.consequence} ({tax.consequences[c.consequence].label})"]
                     if c.consequence in allowed else [])
    return kinds


def fires(rule: Rule, c: Classification, tax: Taxonomy) -> tuple[str, ...]:
    """The triggers when the rule fires, else ()."""
    kinds = _hits(rule, c, tax)
    if rule.match == "all" and not all(kinds):
        return ()
    return tuple(t for kind in kinds for t in kind)


def recommend(c: Classification, tax: Taxonomy) -> list[Recommendation]:
    reasons: dict[str, list[Reason]] = {}
    for rule in tax.rules:
        triggers = fires(rule, c, tax)
        if triggers:
            reasons.setdefault(rule.strategy, []).append(Reason(rule.reason, triggers))
    return [Recommendation(s, tuple(reasons[s.id])) for s in tax.strategies.values() if s.id in reasons]


def recommend_for(incident: Incident, tax: Taxonomy) -> list[Recommendation]:
    return recommend(Classification.of(incident), tax)


def ids(recommendations: Iterable[Recommendation]) -> list[str]:
    return [r.strategy.id for r in recommendations]
