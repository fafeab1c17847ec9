"""The classification frameworks as data: HIT-CS problem types, consequences, report stages and
contributing factors (taxonomy/hit_cs.toml), the 18 imaging workflow steps (workflow_steps.toml)
and the 16 strategies in 4 areas with the rules that recommend them (strategies.toml).

`load_taxonomy()` reads the files shipped in the package. A site that has the published list of
the 18 steps passes `workflow_steps_file=` (a file in the format of workflow_steps.toml) to replace
the provisional names; `site_taxonomy(data_dir)` does so when `<data_dir>/taxonomy/workflow_steps.toml`
exists. The files are checked on load (unique ids, steps 1-18, every id a rule names exists), so a
bad replacement file stops with a message instead of classifying against a broken list.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import InvalidInput

STEP_STATUSES = ("published", "provisional")
RULE_MATCHES = ("any", "all")
SITE_OVERRIDE = Path("taxonomy") / "workflow_steps.toml"


@dataclass(frozen=True)
class ProblemType:
    id: str
    label: str
    branch: str  # "human / use", "machine", "software" or "other technical"


@dataclass(frozen=True)
class Consequence:
    id: str
    label: str
    rank: int | None  # 0 = most severe; None = kept apart from the severity order (complaint)


@dataclass(frozen=True)
class Factor:
    id: str
    label: str


@dataclass(frozen=True)
class Stage:
    id: str
    label: str


@dataclass(frozen=True)
class WorkflowStep:
    number: int
    name: str
    status: str  # "published" or "provisional"
    systems: tuple[str, ...]


@dataclass(frozen=True)
class Strategy:
    id: str
    area: str  # area id: P, T, C or D
    area_name: str
    text: str
    in_twinpacs: str


@dataclass(frozen=True)
class Rule:
    strategy: str
    reason: str
    match: str = "any"
    problem_types: tuple[str, ...] = ()
    workflow_steps: tuple[int, ...] = ()
    factors: tuple[str, ...] = ()
    consequences: tuple[str, ...] = ()
    consequence_at_least: str | None = None


@dataclass(frozen=True)
class Taxonomy:
    problem_types: dict[str, ProblemType]
    consequences: dict[str, Consequence]  # in file order: most severe first, complaint last
    stages: dict[str, Stage]
    contributing_factors: dict[str, Factor]
    workflow_steps: dict[int, WorkflowStep]
    areas: dict[str, str]  # area id -> name
    strategies: dict[str, Strategy]
    rules: tuple[Rule, ...] = field(default=())
    workflow_steps_source: str = "package"  # "package" or the path of a site's replacement file

    def severity_at_least(self, consequence: str) -> set[str]:
        """The consequence and every more severe one (a complaint is in no order: only itself)."""
        rank = self.consequences[consequence].rank
        if rank is None:
            return {consequence}
        return {c.id for c in self.consequences.values() if c.rank is not None and c.rank <= rank}

    def as_dict(self) -> dict[str, Any]:
        return {
            "problem_types": [vars(p) for p in self.problem_types.values()],
            "consequences": [vars(c) for c in self.consequences.values()],
            "stages": [vars(s) for s in self.stages.values()],
            "contributing_factors": [vars(f) for f in self.contributing_factors.values()],
            "workflow_steps": [{**vars(s), "systems": list(s.systems)} for s in self.workflow_steps.values()],
            "workflow_steps_source": self.workflow_steps_source,
            "areas": [{"id": a, "name": n} for a, n in self.areas.items()],
            "strategies": [vars(s) for s in self.strategies.values()],
        }


def _read_package(name: str) -> dict[str, Any]:
    return tomllib.loads(resources.files("twinpacs.taxonomy").joinpath(name).read_text("utf-8"))


def _unique(kind: str, ids: list[Any]) -> None:
    dupes = sorted({str(i) for i in ids if ids.count(i) > 1})
    if dupes:
        raise InvalidInput(f"taxonomy: duplicate {kind} ids: {', '.join(dupes)}")


def _steps(data: dict[str, Any], source: str) -> dict[int, WorkflowStep]:
    try:
        steps = [WorkflowStep(int(s["number"]), str(s["name"]), str(s["status"]),
                              tuple(str(x) for x in s.get("systems", ())))
                 for s in data.get("step", [])]
    except (KeyError, TypeError, ValueError) as e:
        raise InvalidInput(f"workflow steps ({source}): each [[step]] needs number, name and status ({e})") from e
    if sorted(s.number for s in steps) != list(range(1, 19)):
        raise InvalidInput(f"workflow steps ({source}): need exactly the steps 1 to 18, "
                           f"got {sorted(s.number for s in steps)}")
    for s in steps:
        if s.status not in STEP_STATUSES:
            raise InvalidInput(f"workflow steps ({source}): step {s.number} has status {s.status!r}; "
                               f"allowed: {', '.join(STEP_STATUSES)}")
    return {s.number: s for s in sorted(steps, key=lambda s: s.number)}


def _rule(r: dict[str, Any], tax: Taxonomy) -> Rule:
    rule = Rule(strategy=r["strategy"], reason=r["reason"], match=r.get("match", "any"),
                problem_types=tuple(r.get("problem_types", ())),
                workflow_steps=tuple(int(n) for n in r.get("workflow_steps", ())),
                factors=tuple(r.get("factors", ())), consequences=tuple(r.get("consequences", ())),
                consequence_at_least=r.get("consequence_at_least"))
    unknown = ([rule.strategy] if rule.strategy not in tax.strategies else []) \
        + [p for p in rule.problem_types if p not in tax.problem_types] \
        + [str(n) for n in rule.workflow_steps if n not in tax.workflow_steps] \
        + [f for f in rule.factors if f not in tax.contributing_factors] \
        + [c for c in (*rule.consequences, *filter(None, [rule.consequence_at_least]))
           if c not in tax.consequences]
    if unknown or rule.match not in RULE_MATCHES:
        raise InvalidInput(f"strategy rule for {rule.strategy}: unknown ids {unknown} or match {rule.match!r}")
    return rule


def load_taxonomy(workflow_steps_file: Path | None = None) -> Taxonomy:
    """The shipped taxonomy; `workflow_steps_file` replaces the 18 steps with a site's list."""
    if workflow_steps_file is None:
        return _packaged()
    try:
        data = tomllib.loads(Path(workflow_steps_file).read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise InvalidInput(f"workflow steps file {workflow_steps_file}: {e}") from e
    # Rules name steps by number (1-18, checked in _steps), so they hold for a replacement list.
    return replace(_packaged(), workflow_steps=_steps(data, str(workflow_steps_file)),
                   workflow_steps_source=str(workflow_steps_file))


def site_taxonomy(data_dir: Path) -> Taxonomy:
    """The taxonomy a site uses: the site's `taxonomy/workflow_steps.toml` when it has one."""
    override = Path(data_dir) / SITE_OVERRIDE
    return load_taxonomy(override if override.is_file() else None)


@lru_cache(maxsize=1)
def _packaged() -> Taxonomy:
    hit = _read_package("hit_cs.toml")
    strat = _read_package("strategies.toml")
    for kind, rows in (("problem type", hit["problem_type"]), ("consequence", hit["consequence"]),
                       ("factor", hit["contributing_factor"]), ("strategy", strat["strategy"])):
        _unique(kind, [r["id"] for r in rows])
    ranked = [c for c in hit["consequence"] if c.get("ranked", True)]
    areas = {a["id"]: a["name"] for a in strat["area"]}
    tax = Taxonomy(
        problem_types={p["id"]: ProblemType(p["id"], p["label"], p["branch"]) for p in hit["problem_type"]},
        consequences={c["id"]: Consequence(c["id"], c["label"], ranked.index(c) if c in ranked else None)
                      for c in hit["consequence"]},
        stages={s["id"]: Stage(s["id"], s["label"]) for s in hit["stage"]},
        contributing_factors={f["id"]: Factor(f["id"], f["label"]) for f in hit["contributing_factor"]},
        workflow_steps=_steps(_read_package("workflow_steps.toml"), "package"),
        areas=areas,
        strategies={s["id"]: Strategy(s["id"], s["area"], areas[s["area"]], s["text"], s["in_twinpacs"])
                    for s in strat["strategy"]},
    )
    return replace(tax, rules=tuple(_rule(r, tax) for r in strat["rule"]))
