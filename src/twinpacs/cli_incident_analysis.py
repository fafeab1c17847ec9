"""`twinpacs incident suggest|report`: a suggested classification of a report's text, and the
register's counts as charts (PNG/SVG, one file per chart) or as CSV/JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from .cli_remote import ConfigOption, JsonOption
from .core.incident_reports import DIMENSIONS, IncidentFacts, IncidentReport, count_incidents
from .core.suggest import Suggestion, suggest
from .errors import InvalidInput

out = Console(width=None if Console().is_terminal else 200)
REPORT_FORMATS = ("png", "svg", "csv", "json")
DataDirOption = Annotated[Optional[Path], typer.Option("--data-dir", help="Folder of the site's data.")]


def suggest_command(
    text: Annotated[Optional[str], typer.Option("--text", help="The report's text; standard input if not given.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Suggest HIT-CS problem types, workflow steps and the consequence from a report's text
    (English or Swedish), ranked by confidence, each with the passages that support it."""
    result = suggest(sys.stdin.read() if text is None else text)
    if as_json:
        out.print_json(json.dumps(result.as_dict(), ensure_ascii=False))
        return
    sections: list[tuple[str, tuple[Suggestion, ...]]] = [
        ("problem types", result.problem_types), ("workflow steps", result.workflow_steps),
        ("consequence (first: the suggestion)", result.consequences)]
    for title, items in sections:
        out.print(f"[bold]{title}[/bold]" + ("" if items else ": none found"))
        for s in items:
            out.print(f"  {s.confidence:.2f}  {escape(str(s.id))}", highlight=False)
            for e in s.evidence:
                out.print(f"        \"{escape(e.passage)}\"  [dim]({escape(', '.join(e.words))})[/dim]",
                          highlight=False, soft_wrap=True)


def read_report(config: Path | None, data_dir: Path | None) -> IncidentReport:
    """The counts over the site's incident register."""
    from .cli_local import existing_index
    from .index.incident_register import register_for

    with existing_index(config, data_dir) as (settings, index):
        register = register_for(index.db, settings.site.data_dir)
        return count_incidents((IncidentFacts.of(i) for i in register.list()), register.taxonomy)


def report_command(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    fmt: Annotated[str, typer.Option("--format", help="png | svg (one file per chart) | csv | json.")] = "json",
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Folder to write to; CSV/JSON go to "
                                                    "standard output without it, charts to the current folder.")] = None,
) -> None:
    """Counts of the register's incidents by problem type, consequence, workflow step and month."""
    if fmt not in REPORT_FORMATS:
        raise InvalidInput(f"--format must be one of {', '.join(REPORT_FORMATS)}, not {fmt!r}")
    report = read_report(config, data_dir)
    if fmt in ("csv", "json"):
        text = report.to_csv() if fmt == "csv" else json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n"
        if out_dir is None:
            sys.stdout.write(text)
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"incidents.{fmt}").write_text(text, encoding="utf-8")
        out.print(f"wrote {out_dir / f'incidents.{fmt}'}", highlight=False)
        return
    from .incident_charts import render_chart  # matplotlib: loaded only when drawing

    target = out_dir or Path(".")
    target.mkdir(parents=True, exist_ok=True)
    for chart in DIMENSIONS:
        path = target / f"incidents_{chart}.{fmt}"
        path.write_bytes(render_chart(report, chart, fmt))
        out.print(f"wrote {path}", highlight=False)


def add_commands(app: typer.Typer) -> None:
    """Adds suggest and report to the `incident` command group."""
    app.command("suggest")(suggest_command)
    app.command("report")(report_command)
