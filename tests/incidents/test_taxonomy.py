"""The frameworks as data: the ids are the project's stable ids (../shared/reference), steps say
whether they are published, and a site can replace the provisional steps with the published list."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from twinpacs.core.taxonomy import load_taxonomy, site_taxonomy
from twinpacs.errors import InvalidInput

PROBLEM_TYPES = ["H.entry_retrieval_wrong", "H.entry_retrieval_missing", "M.output_wrong", "M.output_delayed",
                 "M.output_none", "S.functionality", "S.configuration", "S.interface_software",
                 "S.interface_devices", "S.record_migration", "S.transaction_volume", "S.storage_backup",
                 "S.not_accessible", "S.network_server"]
CONSEQUENCES = ["death", "harm", "near_miss", "noticeable_no_harm", "no_noticeable", "hazardous_circumstance",
                "complaint"]
STRATEGIES = ["P1", "P2", "P3", "P4", "T1", "T2", "C1", "C2", "C3", "C4", "D1", "D2", "D3", "D4", "D5", "D6"]
PACKAGE = Path(__file__).parents[2] / "src" / "twinpacs" / "taxonomy"


def test_the_reference_ids_and_labels() -> None:
    tax = load_taxonomy()
    assert list(tax.problem_types)[:14] == PROBLEM_TYPES
    assert {p.branch for p in list(tax.problem_types.values())[14:]} == {"other technical"}
    assert tax.problem_types["S.configuration"].label == "System configuration"
    assert tax.problem_types["S.configuration"].branch == "software"
    assert list(tax.consequences) == CONSEQUENCES
    assert list(tax.stages) == ["as_reported", "after_investigation"]
    assert list(tax.strategies) == STRATEGIES
    assert tax.areas == {"P": "Preparation and integration for upgraded systems",
                         "T": "Training for imaging professionals",
                         "C": "Contingency planning / immediate backup", "D": "System design and configuration"}
    assert tax.strategies["D6"].in_twinpacs == "prefetch of priors, side-by-side display protocol"


def test_consequences_in_severity_order_complaint_apart() -> None:
    tax = load_taxonomy()
    assert [c.rank for c in tax.consequences.values()] == [0, 1, 2, 3, 4, 5, None]
    assert tax.severity_at_least("near_miss") == {"death", "harm", "near_miss"}
    assert tax.severity_at_least("complaint") == {"complaint"}


def test_workflow_steps_published_and_provisional() -> None:
    tax = load_taxonomy()
    assert list(tax.workflow_steps) == list(range(1, 19))
    published = {n for n, s in tax.workflow_steps.items() if s.status == "published"}
    assert published == {10, 11, 12}
    assert tax.workflow_steps[11].name == "Calling up of the patient's referral"
    assert tax.workflow_steps[11].systems == ("RIS", "RIS–PACS integration")
    assert all(s.systems for s in tax.workflow_steps.values())
    assert tax.workflow_steps_source == "package"


def test_every_strategy_has_a_rule() -> None:
    tax = load_taxonomy()
    assert {r.strategy for r in tax.rules} == set(STRATEGIES)


def _published_list(path: Path, steps: range = range(1, 19), status: str = "published") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f'[[step]]\nnumber = {n}\nname = "Published step {n}"\nstatus = "{status}"\n'
                            f'systems = ["RIS"]\n\n' for n in steps), "utf-8")
    return path


def test_a_site_loads_the_published_list(tmp_path: Path) -> None:
    assert site_taxonomy(tmp_path).workflow_steps_source == "package"
    replacement = _published_list(tmp_path / "taxonomy" / "workflow_steps.toml")
    tax = site_taxonomy(tmp_path)
    assert tax.workflow_steps[3].name == "Published step 3" and tax.workflow_steps[3].status == "published"
    assert tax.workflow_steps_source == str(replacement)
    assert tax.as_dict()["workflow_steps_source"] == str(replacement)
    assert load_taxonomy().workflow_steps[3].status == "provisional"  # the shipped list is untouched


@pytest.mark.parametrize(("steps", "status", "message"), [
    (range(1, 18), "published", "need exactly the steps 1 to 18"),
    (range(1, 19), "guessed", "status 'guessed'; allowed: published, provisional"),
])
def test_a_bad_replacement_is_refused(tmp_path: Path, steps: range, status: str, message: str) -> None:
    bad = _published_list(tmp_path / "steps.toml", steps, status)
    with pytest.raises(InvalidInput, match=message):
        load_taxonomy(bad)


def test_the_data_files_ship_in_the_package() -> None:
    pyproject = tomllib.loads((PACKAGE.parents[2] / "pyproject.toml").read_text("utf-8"))
    assert "taxonomy/*.toml" in pyproject["tool"]["setuptools"]["package-data"]["twinpacs"]
    assert {"hit_cs.toml", "workflow_steps.toml", "strategies.toml"} <= {p.name for p in PACKAGE.glob("*.toml")}
