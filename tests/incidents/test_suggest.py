"""Suggested classification from a report's text: the seed case in English and in Swedish, the
rules' ids against the taxonomy, negation, confidence, bad input, and the CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from twinpacs.cli import app
from twinpacs.core.suggest import Suggestions, emitted_ids, parse_rules, suggest
from twinpacs.core.taxonomy import load_taxonomy
from twinpacs.errors import InvalidInput

SEED_EN = {
    "description": (
        "For several weeks the PACS had been struggling: examinations could not be seen or displayed, work "
        "was slow, and staff improvised, looking for examinations in image viewers they were not used to. "
        "Staff judged this unacceptable as a working environment and a possible threat to patient safety. On "
        "the day of the report, two emergency patients did not have their images available before acute "
        "surgery."
    ),
    "cause_investigation": (
        "The problems concerned the PACS workstation used in the hospital. Performance deteriorated sharply "
        "after a change of hardware, server operating system and database manager. After weeks of "
        "troubleshooting the supplier found a configuration missing from the application; without it the "
        "system spent much time updating image files that did not need updating, which left examinations "
        "locked and inaccessible. After the setting was corrected the systems worked better. On the day of "
        "the report, a planned failover of the image archive (switching the active data centre) had been done "
        "at 11:55; soon after, reports came in that a number of newly produced examinations were unavailable. "
        "The supplier found that those examinations had not been replicated from the previously active half "
        "of the archive to the newly active half. Synchronisation ran until about midnight, and information "
        "was posted on the intranet. Part of the reason the supplier did not know the halves were out of "
        "sync: one tool showed 100% synchronised data, but that figure was rounded."
    ),
    "measures": (
        "The missing configuration was adjusted, and the image archive was synchronised."
    ),
}

# The same three fields in Swedish, written for this test.
SEED_SV = {
    "description": (
        "Under flera veckor hade PACS haft stora problem: undersökningar gick inte att se eller visa, arbetet "
        "gick långsamt och personalen improviserade och letade efter undersökningar i bildvisare som de inte "
        "var vana vid. Personalen bedömde detta som en oacceptabel arbetsmiljö och ett möjligt hot mot "
        "patientsäkerheten. Samma dag som rapporten skrevs hade två akutpatienter inte sina bilder "
        "tillgängliga före akut operation."
    ),
    "cause_investigation": (
        "Problemen gällde den PACS-arbetsstation som används på sjukhuset. Prestandan försämrades kraftigt "
        "efter byte av hårdvara, serveroperativsystem och databashanterare. Efter flera veckors felsökning "
        "fann leverantören att en konfiguration saknades i applikationen; utan den lade systemet mycket tid "
        "på att uppdatera bildfiler som inte behövde uppdateras, vilket gjorde att undersökningar blev låsta "
        "och otillgängliga. Efter att inställningen rättats fungerade systemen bättre. Samma dag som "
        "rapporten skrevs hade en planerad failover av bildarkivet (byte av aktivt datacenter) gjorts kl "
        "11.55; strax därefter kom rapporter om att ett antal nyproducerade undersökningar inte var "
        "tillgängliga. Leverantören fann att dessa undersökningar inte hade replikerats från den tidigare "
        "aktiva halvan av arkivet till den nya aktiva halvan. Synkroniseringen pågick till omkring midnatt, "
        "och information lades ut på intranätet. En del av förklaringen till att leverantören inte visste att "
        "halvorna var osynkroniserade: ett verktyg visade 100 % synkroniserade data, men siffran var "
        "avrundad."
    ),
    "measures": (
        "Den saknade konfigurationen justerades och bildarkivet synkroniserades."
    ),
}


def _text(fields: dict[str, str]) -> str:
    return "\n\n".join(fields.values())


def _ids(items: tuple) -> list:
    return [s.id for s in items]


def _words(suggestion) -> str:
    return " | ".join(w for e in suggestion.evidence for w in e.words).lower()


@pytest.mark.parametrize("fields", [SEED_EN, SEED_SV], ids=["english", "swedish"])
def test_seed_case_gets_the_published_classification(fields: dict[str, str]) -> None:
    text = _text(fields)
    result = suggest(text)
    top = result.problem_types[0]
    assert top.id == "S.configuration"
    assert top.confidence > result.problem_types[1].confidence
    assert result.consequence is not None and result.consequence.id == "noticeable_no_harm"
    assert sorted(_ids(result.workflow_steps[:3])) == [10, 11, 12]
    assert all(s.confidence < result.workflow_steps[2].confidence for s in result.workflow_steps[3:])
    # The supporting passages: the missing configuration from the cause investigation and its
    # correction from the measures, each quoted from the text with the words that matched.
    passages = [e.passage for e in top.evidence]
    assert any(p in fields["cause_investigation"] and ("configuration missing" in p or "konfiguration saknades" in p)
               for p in passages)
    assert any(p == fields["measures"] for p in passages)
    for suggestion in (top, result.consequence, *result.workflow_steps[:3]):
        assert suggestion.evidence and 0 < suggestion.confidence < 1
        for e in suggestion.evidence:
            assert text[e.start:e.end].strip() == e.passage
            assert all(w.lower() in e.passage.lower() for w in e.words)
    assert "acute surgery" in _words(result.consequence) or "akut operation" in _words(result.consequence)


def test_every_id_the_rules_can_emit_is_in_the_taxonomy() -> None:
    tax = load_taxonomy()
    ids = emitted_ids()
    assert ids["problem_type"] <= set(tax.problem_types)
    assert ids["consequence"] <= set(tax.consequences)
    assert ids["workflow_step"] <= set(tax.workflow_steps)
    assert ids["consequence"] == set(tax.consequences)  # every consequence can be suggested


@pytest.mark.parametrize("text, expected", [
    ("The patient died after the wrong images were displayed for the study.", ("M.output_wrong", "death")),
    ("Patienten avled efter att fel bilder visades i bildvisaren.", ("M.output_wrong", "death")),
    ("Ransomware encrypted the archive server; no patients were affected.", ("T.malicious_attack", "no_noticeable")),
    ("Ett strömavbrott stoppade röntgen; ingen påverkan på patienterna.", ("T.power_failure", "no_noticeable")),
    ("Servern låg nere och bilder kunde inte hämtas på en timme.", ("S.network_server", None)),
    ("Bilderna kunde inte hämtas.", ("S.not_accessible", None)),
    ("A relative made a complaint: the report was never sent to the GP after a HL7 interface error.",
     ("S.interface_software", "complaint")),
])
def test_other_categories_in_both_languages(text: str, expected: tuple[str, str | None]) -> None:
    result = suggest(text)
    assert result.problem_types[0].id == expected[0]
    assert (result.consequence.id if result.consequence else None) == expected[1]


@pytest.mark.parametrize("text", ["There was no patient harm.", "Ingen vårdskada uppstod."])
def test_negated_harm_is_not_harm(text: str) -> None:
    result = suggest(text)
    assert "harm" not in _ids(result.consequences)
    assert result.consequence is not None and result.consequence.id == "noticeable_no_harm"


def test_confidence_is_noisy_or_over_distinct_rules() -> None:
    rules = parse_rules({"rule": [
        {"id": "a", "target": "problem_type", "emits": ["S.configuration"], "weight": 0.5, "en": [r"\bsetting\b"]},
        {"id": "b", "target": "problem_type", "emits": ["S.configuration"], "weight": 0.4, "en": [r"\bconfig\b"]},
    ]})
    once = suggest("The setting.", rules).problem_types[0]
    repeated = suggest("The setting. The setting again. The setting.", rules).problem_types[0]
    both = suggest("The setting and the config.", rules).problem_types[0]
    assert once.confidence == repeated.confidence == 0.5  # one rule counts once
    assert len(repeated.evidence) == 3  # but every passage is shown
    assert both.confidence == pytest.approx(1 - 0.5 * 0.6)


def test_same_text_same_suggestions() -> None:
    assert suggest(_text(SEED_SV)) == suggest(_text(SEED_SV))


def test_a_text_without_signals_suggests_nothing() -> None:
    assert suggest("Lorem ipsum dolor sit amet.") == Suggestions((), (), ())


@pytest.mark.parametrize("text, field", [("", "text"), ("   ", "text"), (None, "text"), ("x" * 200_001, "text")])
def test_bad_text_is_refused(text: object, field: str) -> None:
    with pytest.raises(InvalidInput, match=field):
        suggest(text)  # type: ignore[arg-type]


@pytest.mark.parametrize("rule, message", [
    ({"target": "cause"}, "target must be one of problem_type, workflow_step, consequence"),
    ({"emits": []}, "emits must be a non-empty list of str"),
    ({"weight": 1.0}, "weight must be a number between 0 and 1"),
    ({"en": ["(unclosed"]}, "bad pattern"),
    ({"en": [], "sv": []}, "needs patterns"),
    ({"negatable": "yes"}, "negatable must be true or false"),
])
def test_bad_rules_are_refused_naming_the_rule_and_field(rule: dict, message: str) -> None:
    good = {"id": "r1", "target": "problem_type", "emits": ["S.configuration"], "weight": 0.5, "en": ["x"]}
    with pytest.raises(InvalidInput, match=f"rule r1: {message}"):
        parse_rules({"rule": [{**good, **rule}]})


def test_cli_suggest_json_from_stdin_and_text() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["incident", "suggest", "--json"], input=_text(SEED_SV))
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["problem_types"][0]["id"] == "S.configuration"
    assert data["consequence"]["id"] == "noticeable_no_harm"
    assert sorted(s["id"] for s in data["workflow_steps"][:3]) == [10, 11, 12]
    confidences = [s["confidence"] for s in data["problem_types"]]
    assert confidences == sorted(confidences, reverse=True)
    assert data["problem_types"][0]["evidence"][0]["passage"]
    plain = runner.invoke(app, ["incident", "suggest", "--text", _text(SEED_EN)])
    assert plain.exit_code == 0, plain.output
    assert "S.configuration" in plain.output and "configuration missing" in plain.output
