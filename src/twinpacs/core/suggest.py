"""Suggested classification of an incident report from its free text (English or Swedish):
HIT-CS problem types, steps of the 18-step imaging workflow and the consequence, each with a
confidence and the passages that support it, for the analyst to accept or change.

Offline and deterministic: keyword and phrase rules from the data file
`twinpacs/taxonomy/suggest_rules.toml` (its header documents the rule format).

Confidence. Each rule has a weight w in (0, 1): how strongly one hit of that rule alone
supports its suggestion. The rules that hit are combined as independent pieces of evidence
(noisy-OR): confidence = 1 - prod(1 - w) over the distinct rules that hit. A rule counts once
however often it hits (saying "locked" five times is one piece of evidence); more distinct
rules, or stronger ones, raise the confidence, which stays below 1. Suggestions are ranked by
confidence, then by id (steps by number)."""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

from ..errors import InvalidInput

Target = Literal["problem_type", "workflow_step", "consequence"]
TARGETS: tuple[Target, ...] = ("problem_type", "workflow_step", "consequence")
MAX_TEXT = 200_000  # characters; a report is a few pages at most
_NEGATION = re.compile(r"\b(no|not|never|without|nor|ingen|inget|inga|inte|ej|utan|aldrig)\b|n't\b", re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)|\n\s*")


@dataclass(frozen=True)
class Rule:
    id: str
    target: Target
    emits: tuple[str | int, ...]
    weight: float
    why: str
    patterns: tuple[re.Pattern[str], ...]
    negatable: bool  # a negation just before a hit cancels it


@dataclass(frozen=True)
class Evidence:
    """One passage (the sentence) that supports a suggestion, the words in it that matched,
    and where the passage sits in the text (character offsets, end exclusive)."""
    passage: str
    words: tuple[str, ...]
    start: int
    end: int

    def as_dict(self) -> dict[str, Any]:
        return {"passage": self.passage, "words": list(self.words), "start": self.start, "end": self.end}


@dataclass(frozen=True)
class Suggestion:
    id: str | int
    confidence: float
    evidence: tuple[Evidence, ...]
    reasons: tuple[str, ...]  # the `why` of each rule that hit

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "confidence": self.confidence, "evidence": [e.as_dict() for e in self.evidence],
                "reasons": list(self.reasons)}


@dataclass(frozen=True)
class Suggestions:
    problem_types: tuple[Suggestion, ...]
    workflow_steps: tuple[Suggestion, ...]
    consequences: tuple[Suggestion, ...]  # ranked; an incident has one: the first is the suggestion

    @property
    def consequence(self) -> Suggestion | None:
        return self.consequences[0] if self.consequences else None

    def as_dict(self) -> dict[str, Any]:
        top = self.consequence
        return {"problem_types": [s.as_dict() for s in self.problem_types],
                "workflow_steps": [s.as_dict() for s in self.workflow_steps],
                "consequence": top.as_dict() if top else None,
                "consequence_alternatives": [s.as_dict() for s in self.consequences[1:]]}


def parse_rules(data: dict[str, Any], source: str = "rules") -> tuple[Rule, ...]:
    """Rules from the parsed TOML; a bad rule is an InvalidInput naming it and the field."""
    rules: list[Rule] = []
    seen: set[str] = set()
    for number, raw in enumerate(data.get("rule", []), 1):
        name = raw.get("id") or f"#{number}"
        where = f"{source}: rule {name}"
        if name in seen:
            raise InvalidInput(f"{where}: id is used twice")
        seen.add(name)
        target = raw.get("target")
        if target not in TARGETS:
            raise InvalidInput(f"{where}: target must be one of {', '.join(TARGETS)}, not {target!r}")
        emits = raw.get("emits")
        kind = int if target == "workflow_step" else str
        if not emits or not isinstance(emits, list) or not all(type(e) is kind for e in emits):
            raise InvalidInput(f"{where}: emits must be a non-empty list of {kind.__name__}")
        weight = raw.get("weight")
        if not isinstance(weight, float) or not 0 < weight < 1:
            raise InvalidInput(f"{where}: weight must be a number between 0 and 1 (exclusive), not {weight!r}")
        texts = [*raw.get("en", []), *raw.get("sv", [])]
        if not texts:
            raise InvalidInput(f"{where}: needs patterns in en or sv")
        try:
            patterns = tuple(re.compile(t, re.IGNORECASE) for t in texts)
        except re.error as e:
            raise InvalidInput(f"{where}: bad pattern {e.pattern!r}: {e}") from e
        negatable = raw.get("negatable", target == "consequence")
        if not isinstance(negatable, bool):
            raise InvalidInput(f"{where}: negatable must be true or false, not {negatable!r}")
        rules.append(Rule(name, target, tuple(emits), weight, str(raw.get("why", "")), patterns, negatable))
    return tuple(rules)


@cache
def default_rules() -> tuple[Rule, ...]:
    text = resources.files("twinpacs.taxonomy").joinpath("suggest_rules.toml").read_text(encoding="utf-8")
    return parse_rules(tomllib.loads(text), "suggest_rules.toml")


def emitted_ids(rules: tuple[Rule, ...] | None = None) -> dict[Target, set[str | int]]:
    """Every id the rules can suggest, by target (to check them against the taxonomy)."""
    found: dict[Target, set[str | int]] = {t: set() for t in TARGETS}
    for rule in rules or default_rules():
        found[rule.target].update(rule.emits)
    return found


def _sentences(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for boundary in _SENTENCE_END.finditer(text):
        spans.append((start, boundary.start()))
        start = boundary.end()
    spans.append((start, len(text)))
    return [(s, e) for s, e in spans if text[s:e].strip()]


def _negated(text: str, sentence_start: int, match_start: int) -> bool:
    """A negation among the three words before the hit, within its sentence."""
    before = text[sentence_start:match_start].split()[-3:]
    return bool(_NEGATION.search(" ".join(before)))


def suggest(text: str, rules: tuple[Rule, ...] | None = None) -> Suggestions:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("text must be a non-empty string: the report's description, cause and measures")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"text must be at most {MAX_TEXT} characters, not {len(text)}")
    text = unicodedata.normalize("NFC", text)
    sentences = _sentences(text)
    # (target, id) -> rule id -> weight, and -> sentence span -> matched words
    hits: dict[tuple[Target, str | int], dict[str, Rule]] = {}
    passages: dict[tuple[Target, str | int], dict[tuple[int, int], list[str]]] = {}
    for s_start, s_end in sentences:
        sentence = text[s_start:s_end]
        for rule in rules or default_rules():
            for pattern in rule.patterns:
                for m in pattern.finditer(sentence):
                    if rule.negatable and _negated(text, s_start, s_start + m.start()):
                        continue
                    for key in ((rule.target, e) for e in rule.emits):
                        hits.setdefault(key, {})[rule.id] = rule
                        words = passages.setdefault(key, {}).setdefault((s_start, s_end), [])
                        if m.group(0) not in words:
                            words.append(m.group(0))
    ranked: dict[Target, list[Suggestion]] = {t: [] for t in TARGETS}
    for (target, ident), by_rule in hits.items():
        miss = 1.0
        for rule in by_rule.values():
            miss *= 1 - rule.weight
        evidence = tuple(Evidence(text[s:e].strip(), tuple(w), s, e)
                         for (s, e), w in sorted(passages[(target, ident)].items()))
        ranked[target].append(Suggestion(ident, round(1 - miss, 3), evidence,
                                         tuple(dict.fromkeys(r.why for r in by_rule.values()))))
    for items in ranked.values():
        items.sort(key=lambda s: (-s.confidence, str(s.id).zfill(3)))
    return Suggestions(tuple(ranked["problem_type"]), tuple(ranked["workflow_step"]), tuple(ranked["consequence"]))
