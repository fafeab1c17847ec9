"""Incident reports: counts by problem type, consequence, workflow step and month; charts as
valid PNG and SVG images that carry the right counts; CSV/JSON exports; the CLI and the API
over a register on the suite's backend."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.backend import backend_url
from twinpacs.app import Site, build_site
from twinpacs.cli import app as cli_app
from twinpacs.config import load_settings
from twinpacs.core.incident_reports import DIMENSIONS, IncidentFacts, IncidentReport, count_incidents
from twinpacs.core.taxonomy import load_taxonomy
from twinpacs.errors import InvalidInput
from twinpacs.incident_charts import render_chart
from twinpacs.index.incident_register import register_for
from twinpacs.web.app import create_app

SVG = "{http://www.w3.org/2000/svg}"
DC = "{http://purl.org/dc/elements/1.1/}"
FACTS = [
    IncidentFacts(date(2026, 1, 14), ("S.configuration", "S.not_accessible"), "noticeable_no_harm", (10, 11, 12)),
    IncidentFacts(date(2026, 1, 20), ("S.configuration",), "near_miss", (12,)),
    IncidentFacts(date(2026, 4, 2), ("S.storage_backup",), "", (8, 12)),
]
EXPECTED = {
    "problem_types": {"S.configuration": 2, "S.not_accessible": 1, "S.storage_backup": 1},
    "consequences": {"death": 0, "harm": 0, "near_miss": 1, "noticeable_no_harm": 1, "no_noticeable": 0,
                     "hazardous_circumstance": 0, "complaint": 0, "": 1},
    "workflow_steps": {"8": 1, "10": 1, "11": 1, "12": 3},
    "months": {"2026-01": 2, "2026-02": 0, "2026-03": 0, "2026-04": 1},
}


@pytest.fixture(scope="module")
def report() -> IncidentReport:
    return count_incidents(FACTS, load_taxonomy())


def test_counts_by_each_dimension(report: IncidentReport) -> None:
    assert report.total == 3
    for dimension in DIMENSIONS:
        assert report.counts(dimension) == EXPECTED[dimension], dimension
    # In the taxonomy's order (consequences most severe first), months in time order.
    assert list(report.counts("consequences"))[:2] == ["death", "harm"]
    assert [b.label for b in report.bars["workflow_steps"]][0].startswith("8. ")


def test_an_incident_counts_once_per_category_and_unclassified_ones_are_counted() -> None:
    tax = load_taxonomy()
    found = count_incidents([IncidentFacts(date(2026, 2, 1), ("S.configuration", "S.configuration"), "harm", (12, 12)),
                             IncidentFacts(date(2026, 2, 3))], tax)
    assert found.counts("problem_types") == {"S.configuration": 1, "": 1}
    assert found.counts("workflow_steps") == {"12": 1, "": 1}
    assert found.counts("months") == {"2026-02": 2}
    assert count_incidents([], tax).as_dict()["problem_types"] == []


def test_csv_and_json_exports(report: IncidentReport) -> None:
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert rows[0] == {"dimension": "total", "key": "", "label": "all incidents", "count": "3"}
    for dimension in DIMENSIONS:
        assert {r["key"]: int(r["count"]) for r in rows if r["dimension"] == dimension} == EXPECTED[dimension]
    data = json.loads(json.dumps(report.as_dict()))
    assert {b["key"]: b["count"] for b in data["workflow_steps"]} == EXPECTED["workflow_steps"]


def _png_counts(data: bytes) -> dict[str, int]:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.load()  # decodes every pixel: a truncated or corrupt file fails here
    assert image.size[0] > 300 and image.size[1] > 200
    assert len(image.convert("RGB").getcolors(maxcolors=1 << 24)) > 2  # something is drawn
    return json.loads(image.text["Description"])["counts"]


def _svg_counts(data: bytes) -> dict[str, int]:
    root = ET.fromstring(data)
    assert root.tag == f"{SVG}svg"
    description = json.loads(root.find(f".//{DC}description").text)
    bars = {g.get("id") for g in root.iter(f"{SVG}g") if (g.get("id") or "").startswith("bar-")}
    assert bars == {f"bar-{k or 'none'}" for k in description["counts"]}
    texts = [t.text for t in root.iter(f"{SVG}text")]
    for count in description["counts"].values():
        assert str(count) in texts  # each bar's count is printed at its end
    return description["counts"]


@pytest.mark.parametrize("chart", DIMENSIONS)
def test_charts_are_valid_images_with_the_right_counts(report: IncidentReport, chart: str) -> None:
    assert _png_counts(render_chart(report, chart, "png")) == EXPECTED[chart]
    svg = render_chart(report, chart, "svg")
    assert _svg_counts(svg) == EXPECTED[chart]
    assert svg == render_chart(report, chart, "svg")  # the same report gives the same file


def test_an_empty_register_still_draws(report: IncidentReport) -> None:
    empty = count_incidents([], load_taxonomy())
    assert _png_counts(render_chart(empty, "months", "png")) == {}
    assert _svg_counts(render_chart(empty, "problem_types", "svg")) == {}


@pytest.mark.parametrize("chart, fmt, message", [("weekdays", "png", "chart must be one of problem_types"),
                                                ("months", "gif", "format must be one of png, svg")])
def test_bad_chart_or_format_is_refused(report: IncidentReport, chart: str, fmt: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        render_chart(report, chart, fmt)


# ------------------------------------------------------------------ over a real register

INCIDENTS = [
    {"event_date": "2026-01-14", "subject": "PACS cannot display studies", "description": "Studies locked.",
     "problem_types": {"as_reported": ["S.not_accessible"], "after_investigation": ["S.configuration"]},
     "consequence": "noticeable_no_harm", "workflow_steps": [10, 11, 12]},
    {"event_date": "2026-03-02", "subject": "Failover with unreplicated studies", "description": "Missing studies.",
     "problem_types": {"as_reported": ["S.storage_backup"]}, "consequence": "near_miss", "workflow_steps": [12]},
]


@pytest.fixture
def site_dir(tmp_path: Path) -> Iterator[tuple[Site, Path]]:
    data_dir = tmp_path / "site"
    url = backend_url(data_dir)
    config = tmp_path / "site.toml"
    config.write_text(f'[site]\nname = "reports"\ndata_dir = "{data_dir}"\n[database]\nurl = "{url}"\n')
    site = build_site(load_settings(config))
    register = register_for(site.index.db, data_dir)
    for values in INCIDENTS:
        register.add(values, "tester")
    yield site, config
    site.close()


REGISTER_EXPECTED = {"problem_types": {"S.configuration": 1, "S.storage_backup": 1},  # after investigation wins
                     "workflow_steps": {"10": 1, "11": 1, "12": 2},
                     "months": {"2026-01": 1, "2026-02": 0, "2026-03": 1}}


def test_cli_report_writes_charts_csv_and_json(site_dir: tuple[Site, Path], tmp_path: Path) -> None:
    _, config = site_dir
    runner = CliRunner()
    out = tmp_path / "out"
    for fmt in ("png", "svg"):
        result = runner.invoke(cli_app, ["incident", "report", "--config", str(config), "--format", fmt,
                                         "--out", str(out)])
        assert result.exit_code == 0, result.output
    for chart, expected in REGISTER_EXPECTED.items():
        assert _png_counts((out / f"incidents_{chart}.png").read_bytes()) == expected
        assert _svg_counts((out / f"incidents_{chart}.svg").read_bytes()) == expected
    as_json = runner.invoke(cli_app, ["incident", "report", "--config", str(config), "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert data["total"] == 2
    assert {b["key"]: b["count"] for b in data["problem_types"]} == REGISTER_EXPECTED["problem_types"]
    runner.invoke(cli_app, ["incident", "report", "--config", str(config), "--format", "csv", "--out", str(out)])
    rows = list(csv.DictReader((out / "incidents.csv").open()))
    assert {r["key"]: int(r["count"]) for r in rows if r["dimension"] == "months"} == REGISTER_EXPECTED["months"]
    bad = runner.invoke(cli_app, ["incident", "report", "--config", str(config), "--format", "gif"])
    assert bad.exit_code != 0 and "--format must be one of png, svg, csv, json" in str(bad.exception)


@pytest.fixture
async def client(site_dir: tuple[Site, Path]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(site_dir[0]))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as test_client:
        yield test_client


@pytest.mark.anyio
async def test_api_report_charts_and_suggest(client: httpx.AsyncClient) -> None:
    counts = (await client.get("/api/incidents/report")).json()
    assert counts["total"] == 2
    assert {b["key"]: b["count"] for b in counts["workflow_steps"]} == REGISTER_EXPECTED["workflow_steps"]
    as_csv = await client.get("/api/incidents/report.csv")
    assert as_csv.headers["content-type"].startswith("text/csv") and "S.configuration" in as_csv.text
    png = await client.get("/api/incidents/report/months.png")
    assert png.headers["content-type"] == "image/png"
    assert _png_counts(png.content) == REGISTER_EXPECTED["months"]
    svg = await client.get("/api/incidents/report/problem_types.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert _svg_counts(svg.content) == REGISTER_EXPECTED["problem_types"]
    bad = await client.get("/api/incidents/report/months.gif")
    assert bad.status_code == 400 and "png, svg" in bad.text
    suggested = await client.post("/api/incidents/suggest",
                                  json={"text": "A configuration was missing after the upgrade; studies were locked."})
    assert suggested.status_code == 200
    assert suggested.json()["problem_types"][0]["id"] == "S.configuration"
    for body in ({}, {"text": 5}, {"text": " "}):
        refused = await client.post("/api/incidents/suggest", json=body)
        assert refused.status_code == 400 and "text" in refused.text
