"""The register through the API and the CLI: required fields, unknown ids refused with the
allowed ones and nothing changed, every change a version (who, when, which fields from what to
what), strategies for a classified incident, export, and taking over an archive's draft."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from twinpacs import cli
from twinpacs.app import Site, build_site
from twinpacs.config import load_settings
from twinpacs.index.incident_register import drafts_for
from twinpacs.web import create_app
from tests.backend import backend_url

pytestmark = pytest.mark.anyio

SEED_REPORT = {
    "event_date": "2023-03-14", "event_time": "11:55",
    "subject": "PACS cannot display examinations; images missing before acute surgery",
    "description": "For several weeks examinations could not be seen or displayed. Today two emergency "
                   "patients did not have their images available before acute surgery.",
    "product": "PACS workstation and image archive", "manufacturer": "Vendor X", "software_version": "12.3",
    "cause_investigation": "A configuration was missing after a change of hardware, server OS and database "
                           "manager. After the failover at 11:55, examinations were not replicated; a tool "
                           "showed 100% synchronised, a rounded figure.",
    "measures": "The configuration was adjusted and the archive synchronised.",
    "risk_of_harm": "Delay in treatment", "underlying_cause": "Missing configuration",
}
SEED_ANALYSIS = {
    "problem_types": {"after_investigation": ["S.configuration"]}, "consequence": "noticeable_no_harm",
    "workflow_steps": [12, 10, 11],
    "contributing_factors": [{"id": "system_upgrade", "note": "hardware, server OS, database manager"},
                             "failover", "replication_gap", "misleading_status"],
    "mitigating_factors": ["improvised access through other image viewers"],
    "patient_outcome": "delay in treatment (two emergency patients at risk)",
    "staff_outcome": "severe disruption of clinical workflow for several weeks",
    "actions": ["corrected the missing configuration", "synchronised the archive"],
}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    folder = tmp_path / "a"
    built = build_site(load_settings(overrides={"site": {"data_dir": folder, "name": "A"},
                                                "database": {"url": backend_url(folder)}, "peers": []}))
    yield built
    built.close()


@pytest.fixture
async def client(site: Site) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(site))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as test_client:
        yield test_client


async def test_required_fields_and_unknown_ids_change_nothing(client: httpx.AsyncClient) -> None:
    missing = await client.post("/api/incidents", json={"subject": "x"})
    assert missing.status_code == 400
    assert "event_date, description (required: event_date, subject, description)" in missing.json()["error"]
    bad = await client.post("/api/incidents", json={**SEED_REPORT, "consequence": "mild",
                                                    "problem_types": {"as_reported": ["S.config"]},
                                                    "workflow_steps": [19], "event_date": "14/03/2023"})
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert "problem_types.as_reported: unknown id(s) 'S.config'; allowed: H.entry_retrieval_wrong" in error
    assert "consequence: unknown id 'mild'; allowed: death, harm, near_miss, noticeable_no_harm" in error
    assert "workflow_steps: [19] is not a list of step numbers; allowed: 1 to 18" in error
    assert "event_date must be a date as YYYY-MM-DD, not '14/03/2023'" in error
    stage = await client.post("/api/incidents",
                              json={**SEED_REPORT, "problem_types": {"reported": ["S.configuration"]}})
    assert "unknown report stage(s) 'reported'; allowed: as_reported, after_investigation" in stage.json()["error"]
    assert (await client.get("/api/incidents")).json() == {"incidents": []}


async def test_versions_record_who_changed_what_and_when(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/incidents", json={**SEED_REPORT, "by": "quality.ann"})
    assert created.status_code == 201, created.text
    incident = created.json()
    assert incident["event_weekday"] == "Tuesday" and incident["version"] == 1
    (v1,) = incident["versions"]
    assert v1["changed_by"] == "quality.ann" and v1["changes"]["subject"] == {"from": "", "to": SEED_REPORT["subject"]}
    url = f"/api/incidents/{incident['id']}"

    classified = await client.patch(url, json={**SEED_ANALYSIS, "by": "eng.bo"})
    assert classified.status_code == 200, classified.text
    body = classified.json()
    assert body["version"] == 2 and body["updated_by"] == "eng.bo" and body["workflow_steps"] == [10, 11, 12]
    v2 = body["versions"][1]
    assert v2["changed_by"] == "eng.bo" and v2["changed_at"] >= v1["changed_at"]
    assert set(v2["changes"]) == set(SEED_ANALYSIS)
    assert v2["changes"]["consequence"] == {"from": "", "to": "noticeable_no_harm"}
    assert body["contributing_factors"][1] == {"id": "failover", "note": ""}

    # naming one stage keeps the other; the same values again record no version
    staged = (await client.patch(url, json={"problem_types": {"as_reported": ["S.not_accessible"]}})).json()
    assert staged["problem_types"] == {"as_reported": ["S.not_accessible"], "after_investigation": ["S.configuration"]}
    assert staged["versions"][2]["changed_by"] == "api"
    cleared = (await client.patch(url, json={"problem_types": {"as_reported": []}})).json()
    assert cleared["problem_types"] == {"after_investigation": ["S.configuration"]} and cleared["version"] == 4
    again = (await client.patch(url, json={"consequence": "noticeable_no_harm", "by": "eng.bo"})).json()
    assert again["version"] == 4 and len(again["versions"]) == 4

    refused = await client.patch(url, json={"consequence": "bad", "subject": "changed", "by": "eng.bo"})
    assert refused.status_code == 400 and "consequence: unknown id 'bad'" in refused.json()["error"]
    blank = await client.patch(url, json={"subject": "  "})
    assert blank.status_code == 400 and "an incident needs subject" in blank.json()["error"]
    unchanged = (await client.get(url)).json()
    assert unchanged["subject"] == SEED_REPORT["subject"] and unchanged["version"] == 4

    assert (await client.get("/api/incidents/999")).status_code == 404
    assert (await client.patch("/api/incidents/999", json={"subject": "x"})).status_code == 404


async def test_strategies_and_taxonomy(client: httpx.AsyncClient) -> None:
    created = (await client.post("/api/incidents", json={**SEED_REPORT, **SEED_ANALYSIS})).json()
    got = (await client.get(f"/api/incidents/{created['id']}/strategies")).json()
    assert got["basis"]["stage"] == "after_investigation" and got["basis"]["problem_types"] == ["S.configuration"]
    assert [s["id"] for s in got["strategies"]] == ["P1", "P2", "P3", "P4", "C1", "C2", "C4", "D1", "D3", "D5", "D6"]
    p3 = got["strategies"][2]
    assert p3["area"] == "P" and p3["reasons"][0]["triggers"] == [
        "problem type S.configuration (System configuration), after investigation"]
    taxonomy = (await client.get("/api/taxonomy")).json()
    assert len(taxonomy["strategies"]) == 16 and taxonomy["workflow_steps"][9]["status"] == "published"
    assert {"id": "S.configuration", "label": "System configuration", "branch": "software"} in taxonomy["problem_types"]


async def test_taking_over_a_draft(client: httpx.AsyncClient, site: Site) -> None:
    drafts = drafts_for(site.index.db)
    draft = drafts.draft("A", "Forced failover to B", "3 studies missing at B", {"reason": "drill"})
    bad_id = await client.post("/api/incidents", json={"from_draft": "one"})
    assert bad_id.status_code == 400 and "from_draft" in bad_id.json()["error"]
    taken = await client.post("/api/incidents", json={"from_draft": draft.id, "by": "eng.bo", "product": "twinpacs"})
    assert taken.status_code == 201, taken.text
    body = taken.json()
    assert body["subject"] == "Forced failover to B" and body["source_draft"] == draft.id
    assert body["product"] == "twinpacs" and "reason: drill" in body["description"]
    assert drafts.get(draft.id).state == "reviewed"
    twice = await client.post("/api/incidents", json={"from_draft": draft.id})
    assert twice.status_code == 400 and "already taken over as incident" in twice.json()["error"]
    assert (await client.post("/api/incidents", json={"from_draft": 4242})).status_code == 404


# -- the CLI, against the site's index (the site need not run) ---------------------------------


def _cli(config: Path, *args: str) -> Any:
    return CliRunner().invoke(cli.app, ["incident", *args, "--config", str(config)])


@pytest.fixture
def config(site: Site, tmp_path: Path) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(f'[site]\ndata_dir = "{site.settings.site.data_dir}"\nname = "A"\n\n'
                    f'[database]\nurl = "{site.settings.database_url}"\n', "utf-8")
    return path


def test_cli_add_classify_show_export(config: Path, tmp_path: Path, site: Site) -> None:
    report = tmp_path / "seed.toml"
    report.write_text("event_date = 2023-03-14\nevent_time = \"11:55\"\n"
                      + "".join(f"{k} = {json.dumps(v)}\n" for k, v in SEED_REPORT.items() if k.startswith(("s", "d"))),
                      "utf-8")
    added = _cli(config, "add", str(report), "--set", "product=PACS", "--by", "ann", "--json")
    assert added.exit_code == 0, added.output
    incident = json.loads(added.stdout)
    assert incident["event_date"] == "2023-03-14" and incident["product"] == "PACS" and incident["created_by"] == "ann"
    assert incident["strategies"] == []

    number = str(incident["id"])
    done = _cli(config, "classify", number, "--problem-type", "S.configuration", "--stage", "after_investigation",
                "--consequence", "noticeable_no_harm", "--step", "10", "--step", "11", "--step", "12",
                "--factor", "system_upgrade=new hardware, OS, DBM", "--factor", "failover",
                "--factor", "replication_gap", "--factor", "misleading_status", "--by", "bo")
    assert done.exit_code == 0, done.output
    assert "recommended strategies" in done.stdout and "P3 (Preparation" in done.stdout
    assert "because problem type S.configuration (System configuration), after investigation" in done.stdout

    refused = _cli(config, "classify", number, "--consequence", "catastrophic", "--by", "bo")
    assert refused.exit_code == 1 and "unknown id 'catastrophic'; allowed: death" in refused.stderr
    shown = json.loads(_cli(config, "show", number, "--json").stdout)
    assert shown["version"] == 2 and [v["changed_by"] for v in shown["versions"]] == ["ann", "bo"]
    assert shown["contributing_factors"][0] == {"id": "system_upgrade", "note": "new hardware, OS, DBM"}
    assert [s["id"] for s in shown["strategies"]][:4] == ["P1", "P2", "P3", "P4"]
    text = _cli(config, "show", number).stdout
    assert "v2" in text and "by bo: problem_types, consequence, workflow_steps, contributing_factors" in text
    assert "step 11: Calling up of the patient's referral [published]" in text

    missing = _cli(config, "add", "--subject", "no date", "--by", "ann")
    assert missing.exit_code == 1 and "an incident needs event_date, description" in missing.stderr
    assert "1 incident(s)" in _cli(config, "list").stdout

    rows = list(csv.DictReader(io.StringIO(_cli(config, "export", "--format", "csv").stdout)))
    assert len(rows) == 1 and rows[0]["problem_types_after_investigation"] == "S.configuration"
    assert rows[0]["workflow_steps"] == "10; 11; 12" and rows[0]["event_weekday"] == "Tuesday"
    assert rows[0]["strategies"].startswith("P1; P2; P3; P4; C1; C2; C4")
    out = tmp_path / "export.json"
    assert _cli(config, "export", "--format", "json", "-o", str(out)).exit_code == 0
    (exported,) = json.loads(out.read_text("utf-8"))
    assert exported["versions"][1]["changes"]["consequence"]["to"] == "noticeable_no_harm"
    assert exported["strategies"][0]["reasons"]
    assert _cli(config, "export", "--format", "xml").exit_code == 2


def test_cli_from_draft(config: Path, site: Site) -> None:
    drafts = drafts_for(site.index.db)
    draft = drafts.draft("A", "Replication failing", "B refused 5 objects")
    taken = _cli(config, "add", "--from-draft", str(draft.id), "--by", "eng.bo", "--json")
    assert taken.exit_code == 0, taken.output
    assert json.loads(taken.stdout)["source_draft"] == draft.id
    assert drafts.get(draft.id).reviewed_by == "eng.bo"
    unknown = _cli(config, "add", "--from-draft", "4242")
    assert unknown.exit_code == 1 and "no incident draft with id 4242" in unknown.stderr


def test_cli_needs_the_site(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli.app, ["incident", "list", "--data-dir", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "no twinpacs index" in result.stderr
