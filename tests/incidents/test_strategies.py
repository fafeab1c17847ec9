"""The strategy rules (core/strategies.py, taxonomy/strategies.toml): each area's strategies fire
for the classifications they answer, with the triggers as reasons, and not otherwise."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from twinpacs.core.incident_register import Incident, empty_fields
from twinpacs.core.strategies import Classification, ids, recommend, recommend_for
from twinpacs.core.taxonomy import load_taxonomy

TAX = load_taxonomy()

# The seed case's published analysis, and the facts of its investigation as contributing factors.
SEED = Classification(problem_types=("S.configuration",), stage="after_investigation",
                      consequence="noticeable_no_harm", workflow_steps=(10, 11, 12),
                      factors=("system_upgrade", "failover", "replication_gap", "misleading_status"))


def _reasons(c: Classification) -> dict[str, list[str]]:
    return {r.strategy.id: [t for reason in r.reasons for t in reason.triggers] for r in recommend(c, TAX)}


def test_the_seed_case() -> None:
    got = _reasons(SEED)
    assert list(got) == ["P1", "P2", "P3", "P4", "C1", "C2", "C4", "D1", "D3", "D5", "D6"]
    assert got["P3"] == ["problem type S.configuration (System configuration), after investigation"]
    assert any("failover" in t for t in got["C4"]) and any("replication_gap" in t for t in got["C1"])
    assert got["C2"] == ["consequence noticeable_no_harm (Incident with a noticeable consequence but no patient harm)"]
    assert got["D5"] == ["contributing factor misleading_status (Misleading status indicator (e.g. a rounded or stale figure))"]
    assert "workflow step 12 (Image review and interpretation)" in got["D6"]
    # no use error and no training factor: the training area stays out
    assert not {"T1", "T2"} & set(got)


@pytest.mark.parametrize(("classification", "expected", "trigger"), [
    # P: preparation and integration
    (Classification(problem_types=("S.functionality",)), "P3", "problem type S.functionality"),
    (Classification(problem_types=("S.interface_devices",)), "P2", "problem type S.interface_devices"),
    (Classification(factors=("system_upgrade",)), "P4", "contributing factor system_upgrade"),
    # T: training
    (Classification(problem_types=("H.entry_retrieval_missing",)), "T1", "problem type H.entry_retrieval_missing"),
    (Classification(problem_types=("H.entry_retrieval_wrong",), factors=("resource_exhaustion",)), "T2",
     "contributing factor resource_exhaustion"),
    # C: contingency
    (Classification(problem_types=("S.not_accessible",)), "C4", "problem type S.not_accessible"),
    (Classification(problem_types=("S.storage_backup",)), "C1", "problem type S.storage_backup"),
    (Classification(consequence="harm"), "C2", "consequence harm"),
    (Classification(factors=("prolonged_disruption",)), "C3", "contributing factor prolonged_disruption"),
    # D: design and configuration
    (Classification(workflow_steps=(13,)), "D6", "workflow step 13"),
    (Classification(workflow_steps=(11,)), "D1", "workflow step 11"),
    (Classification(factors=("terminology_mismatch",)), "D4", "contributing factor terminology_mismatch"),
    (Classification(problem_types=("M.output_wrong",)), "D5", "problem type M.output_wrong"),
])
def test_each_area_fires_with_its_reason(classification: Classification, expected: str, trigger: str) -> None:
    got = {r.strategy.id: r for r in recommend(classification, TAX)}
    assert expected in got
    reason = got[expected].reasons[0]
    assert reason.text and any(t.startswith(trigger) for t in reason.triggers)


@pytest.mark.parametrize(("classification", "absent"), [
    (Classification(problem_types=("H.entry_retrieval_wrong",)), "T2"),  # a use error, no change: not T2
    (Classification(factors=("system_upgrade",)), "T2"),  # a change, no use error: not T2
    (Classification(consequence="no_noticeable"), "C2"),
    (Classification(consequence="complaint"), "C2"),  # outside the severity order
    (Classification(workflow_steps=(1, 2, 3)), "D6"),
    (Classification(problem_types=("S.network_server",)), "P3"),
])
def test_rules_do_not_fire_otherwise(classification: Classification, absent: str) -> None:
    assert absent not in ids(recommend(classification, TAX))


def test_nothing_classified_nothing_recommended() -> None:
    assert recommend(Classification(), TAX) == []


def test_all_rules_of_a_strategy_give_reasons() -> None:
    (p4,) = [r for r in recommend(Classification(problem_types=("S.record_migration",), factors=("failover",)), TAX)
             if r.strategy.id == "P4"]
    assert len(p4.reasons) == 1 and len(p4.reasons[0].triggers) == 2
    (c1,) = [r for r in recommend(SEED, TAX) if r.strategy.id == "C1"]
    assert c1.as_dict()["reasons"][0]["triggers"] == [
        "contributing factor failover (Failover or switch of the active site / data centre)",
        "contributing factor replication_gap (Data not replicated: sites or copies out of sync)"]


def _incident(**fields: object) -> Incident:
    at = datetime(2024, 1, 1, tzinfo=timezone.utc)
    return Incident(1, 1, at, "x", at, "x", {**empty_fields(), **fields})


def test_an_incident_is_judged_on_the_investigated_stage() -> None:
    reported = _incident(problem_types={"as_reported": ["S.network_server"]})
    investigated = _incident(problem_types={"as_reported": ["S.network_server"],
                                            "after_investigation": ["S.configuration"]},
                             contributing_factors=[{"id": "system_upgrade", "note": "new OS"}])
    assert "P3" not in ids(recommend_for(reported, TAX)) and "C3" in ids(recommend_for(reported, TAX))
    got = ids(recommend_for(investigated, TAX))
    assert "P3" in got and "C3" not in got and "P1" in got
    assert Classification.of(investigated).stage == "after_investigation"
