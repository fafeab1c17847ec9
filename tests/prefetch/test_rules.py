"""The relevance rules (core/prefetch.choose): a pure function, tested rule by rule."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest

from twinpacs.core.prefetch import (
    CHOSEN,
    LOCAL,
    NOT_RELEVANT,
    Candidate,
    HitRate,
    Rules,
    choose,
    needs_series_details,
    years_before,
)
from twinpacs.core.ris import Order, Patient

NOW = datetime(2026, 11, 30, 11, 55, tzinfo=timezone.utc)
ORDER = Order("P1", "ACC1", Patient("PAT1"), modality="CT", body_part="CHEST",
              scheduled_at=datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc))


def study(uid: str, date: str, modalities: tuple[str, ...] = ("CT",), **kw: object) -> Candidate:
    return Candidate(**{"source": "src", "study_uid": uid, "patient_id": "PAT1", "study_date": date,
                        "modalities": modalities, **kw})  # type: ignore[arg-type]


def states(decisions: list) -> dict[str, str]:  # type: ignore[type-arg]
    return {d.candidate.study_uid: d.state for d in decisions}


def reasons(decisions: list) -> dict[str, str]:  # type: ignore[type-arg]
    return {d.candidate.study_uid: d.reason for d in decisions}


def test_most_recent_relevant_up_to_max_studies() -> None:
    found = [study("old", "20230101"), study("new", "20260601"), study("mid", "20250101"), study("mid2", "20250101",
             study_time="120000")]
    decisions = choose(ORDER, found, Rules(max_studies=2), set(), NOW)
    assert [d.candidate.study_uid for d in decisions] == ["new", "mid2", "mid", "old"]  # most recent first
    assert states(decisions) == {"new": CHOSEN, "mid2": CHOSEN, "mid": NOT_RELEVANT, "old": NOT_RELEVANT}
    assert "max_studies" in reasons(decisions)["mid"]


def test_local_priors_count_as_present_and_take_their_place() -> None:
    found = [study("a", "20260601"), study("b", "20260501"), study("c", "20260401")]
    decisions = choose(ORDER, found, Rules(max_studies=2), {"a"}, NOW)
    assert states(decisions) == {"a": LOCAL, "b": CHOSEN, "c": NOT_RELEVANT}
    assert "already held here" in reasons(decisions)["a"]


def test_other_modality_is_not_relevant_unless_the_rule_is_off() -> None:
    found = [study("mr", "20260601", ("MR",)), study("ctsr", "20260501", ("SR", "CT")), study("none", "20260401", ())]
    decisions = choose(ORDER, found, Rules(), set(), NOW)
    assert states(decisions) == {"mr": NOT_RELEVANT, "ctsr": CHOSEN, "none": NOT_RELEVANT}
    assert "other modality (MR; the order is CT" in reasons(decisions)["mr"]
    assert "gave no modality" in reasons(decisions)["none"]
    assert set(states(choose(ORDER, found, Rules(same_modality=False), set(), NOW)).values()) == {CHOSEN}
    # An order without a modality: the rule has nothing to compare.
    assert states(choose(replace(ORDER, modality=""), found, Rules(), set(), NOW))["mr"] == CHOSEN


def test_within_years_counts_back_from_the_scheduled_time() -> None:
    found = [study("edge", "20211202"), study("older", "20211201"), study("nodate", ""), study("bad", "2021-12-02")]
    decisions = choose(ORDER, found, Rules(within_years=5), set(), NOW)
    assert states(decisions) == {"edge": CHOSEN, "older": NOT_RELEVANT, "nodate": NOT_RELEVANT, "bad": NOT_RELEVANT}
    assert "older than 5 years" in reasons(decisions)["older"]
    assert "no readable StudyDate" in reasons(decisions)["nodate"]
    # Without a scheduled time the reference is now: 2021-12-01 is then within five years.
    unscheduled = choose(replace(ORDER, scheduled_at=None), found, Rules(within_years=5), set(), NOW)
    assert states(unscheduled)["older"] == CHOSEN
    # within_years = 0: any age; a study without a date is then relevant and ranked last.
    anyage = choose(ORDER, found, Rules(within_years=0, max_studies=10), set(), NOW)
    assert states(anyage) == {"edge": CHOSEN, "older": CHOSEN, "nodate": CHOSEN, "bad": CHOSEN}
    assert [d.candidate.study_uid for d in anyage][:2] == ["edge", "older"]


def test_a_study_after_the_scheduled_time_is_not_a_prior() -> None:
    decisions = choose(ORDER, [study("later", "20261203"), study("sameday", "20261202")], Rules(), set(), NOW)
    assert states(decisions) == {"later": NOT_RELEVANT, "sameday": CHOSEN}
    assert "not a prior" in reasons(decisions)["later"]


def test_the_orders_own_study_and_other_patients_are_never_priors() -> None:
    found = [study("own", "20261202", accession_number="ACC1"), study("other", "20260101", patient_id="PAT2"),
             study("fine", "20260101", accession_number="ACC0")]
    decisions = choose(ORDER, found, Rules(), set(), NOW)
    assert states(decisions) == {"own": NOT_RELEVANT, "other": NOT_RELEVANT, "fine": CHOSEN}
    assert "own study" in reasons(decisions)["own"] and "another patient" in reasons(decisions)["other"]


def test_body_part_applies_when_both_are_known() -> None:
    found = [study("chest", "20260601", body_parts=("chest",)), study("head", "20260501", body_parts=("HEAD",)),
             study("unknown", "20260401")]
    rules = Rules(same_body_part=True)
    decisions = choose(ORDER, found, rules, set(), NOW)
    assert states(decisions) == {"chest": CHOSEN, "head": NOT_RELEVANT, "unknown": CHOSEN}
    assert "other body part (HEAD; the order is CHEST" in reasons(decisions)["head"]
    assert needs_series_details(ORDER, rules) and not needs_series_details(replace(ORDER, body_part=""), rules)
    assert not needs_series_details(ORDER, Rules(same_body_part=False))
    assert set(states(choose(replace(ORDER, body_part=""), found, rules, set(), NOW)).values()) == {CHOSEN}


def test_a_study_at_two_sources_is_taken_from_the_first() -> None:
    found = [study("s", "20260601"), replace(study("s", "20260601"), source="second")]
    decisions = choose(ORDER, found, Rules(), set(), NOW)
    assert [(d.candidate.source, d.state) for d in decisions] == [("src", CHOSEN), ("second", NOT_RELEVANT)]
    assert "taken from source src" in decisions[1].reason


def test_max_studies_zero_chooses_nothing() -> None:
    assert states(choose(ORDER, [study("a", "20260601")], Rules(max_studies=0), set(), NOW)) == {"a": NOT_RELEVANT}


def test_29_february() -> None:
    assert years_before(datetime(2028, 2, 29).date(), 1) == datetime(2027, 2, 28).date()


@pytest.mark.parametrize(("opened", "hits", "rate", "percent"), [
    (0, 0, 0.0, "0%"), (3, 3, 1.0, "100%"), (3, 2, 0.666666, "66.6%"), (1_000_000, 999_999, 0.999999, "99.999900%"),
    (10_000_000, 9_999_999, 0.999999, "99.9999900%")])
def test_hit_rate_is_never_rounded_up(opened: int, hits: int, rate: float, percent: str) -> None:
    measured = HitRate(opened, hits)
    assert (measured.rate, measured.as_dict()["percent"]) == (rate, percent)
    assert measured.as_dict()["misses"] == opened - hits
