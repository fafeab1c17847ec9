"""`twinpacs incident add|list|show|classify|export` (and suggest|report from
cli_incident_analysis): the incident register. Like `twinpacs prefetch status`, the commands act
on the site's index through its configuration or data folder, so they work whether or not the
site is running. Field names and values: core.incident_register; ids: `GET /api/taxonomy`."""

from __future__ import annotations

import csv
import io
import json
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

from . import cli_incident_analysis
from .cli_remote import ConfigOption, JsonOption, operator_name
from .core.incident_register import FIELDS, Incident, IncidentRegister, take_over
from .core.strategies import recommend_for
from .errors import TwinpacsError

app = typer.Typer(help="The incident register: record, classify, suggest, report.", no_args_is_help=True)
cli_incident_analysis.add_commands(app)

out = Console(width=None if Console().is_terminal else 200)
err = Console(stderr=True, soft_wrap=True)

DataDirOption = Annotated[Optional[Path], typer.Option("--data-dir", help="Folder of the site's data.")]
ByOption = Annotated[Optional[str], typer.Option("--by", help="Who makes the change (default: your login name).")]
Multi = Optional[list[str]]


@contextmanager
def _register(config: Path | None, data_dir: Path | None) -> Iterator[tuple[IncidentRegister, Any]]:
    """The site's register (and its index database); errors become a message and exit code 1."""
    from .cli_local import existing_index
    from .index.incident_register import register_for

    try:
        with existing_index(config, data_dir) as (settings, index):
            yield register_for(index.db, settings.site.data_dir), index.db
    except TwinpacsError as exc:
        err.print(f"[red]error:[/red] {escape(exc.message)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text("utf-8")
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        raise typer.BadParameter(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{path}: expected a table/object of incident fields")
    # TOML has date and time literals; the register takes them as text (YYYY-MM-DD, HH:MM).
    return {k: v.isoformat() if isinstance(v, (date, time)) else v for k, v in data.items()}


def _pairs(values: Multi, option: str) -> dict[str, str]:
    pairs = {}
    for value in values or []:
        name, sep, text = value.partition("=")
        if not sep:
            raise typer.BadParameter(f"{value!r}: expected FIELD=VALUE", param_hint=option)
        pairs[name.strip()] = text
    return pairs


def _emit(incident: Incident, as_json: bool, register: IncidentRegister) -> None:
    if as_json:
        data = incident.as_dict()
        data["strategies"] = [r.as_dict() for r in recommend_for(incident, register.taxonomy)]
        out.print_json(json.dumps(data))
    else:
        _print(incident, register)


@app.command()
def add(
    file: Annotated[Optional[Path], typer.Argument(help="Incident fields in a .toml or .json file.")] = None,
    subject: Annotated[Optional[str], typer.Option("--subject")] = None,
    description: Annotated[Optional[str], typer.Option("--description", help="As reported.")] = None,
    event_date: Annotated[Optional[str], typer.Option("--date", help="Event date, YYYY-MM-DD.")] = None,
    event_time: Annotated[Optional[str], typer.Option("--time", help="Event time, HH:MM.")] = None,
    field: Annotated[Multi, typer.Option("--set", help="Any text field: FIELD=VALUE (repeatable).")] = None,
    from_draft: Annotated[Optional[int], typer.Option("--from-draft", help="Take over this incident draft.")] = None,
    by: ByOption = None, config: ConfigOption = None, data_dir: DataDirOption = None, as_json: JsonOption = False,
) -> None:
    """Record an incident from a file and/or flags (flags win), or take over an archive's draft."""
    values: dict[str, Any] = _read_file(file) if file else {}
    values.update(_pairs(field, "--set"))
    flags = {"subject": subject, "description": description, "event_date": event_date, "event_time": event_time}
    values.update({k: v for k, v in flags.items() if v is not None})
    with _register(config, data_dir) as (register, db):
        if from_draft is not None:
            from .index.incident_register import drafts_for

            incident = take_over(register, drafts_for(db), from_draft, by or operator_name(), values)
        else:
            incident = register.add(values, by or operator_name())
        _emit(incident, as_json, register)


@app.command("list")
def list_incidents(config: ConfigOption = None, data_dir: DataDirOption = None, as_json: JsonOption = False) -> None:
    """Every incident, newest event first."""
    with _register(config, data_dir) as (register, _db):
        found = register.list()
    if as_json:
        out.print_json(json.dumps([i.as_dict(with_versions=False) for i in found]))
        return
    for i in found:
        f = i.fields
        pts = ",".join(p for stage in f["problem_types"].values() for p in stage) or "-"
        steps = ",".join(map(str, f["workflow_steps"])) or "-"
        out.print(f"{i.id:>4}  {f['event_date']}  v{i.version}  {escape(f['subject'])}  \\[{escape(pts)}] "
                  f"{f['consequence'] or '-'} steps {steps}", highlight=False, soft_wrap=True)
    out.print(f"{len(found)} incident(s)")


@app.command()
def show(incident_id: int, config: ConfigOption = None, data_dir: DataDirOption = None,
         as_json: JsonOption = False) -> None:
    """One incident with its versions and the recommended strategies, each with its reasons."""
    with _register(config, data_dir) as (register, _db):
        _emit(register.get(incident_id), as_json, register)


@app.command()
def classify(
    incident_id: int,
    problem_type: Annotated[Multi, typer.Option(
        "--problem-type", help="HIT-CS id (repeatable); replaces the stage's list.")] = None,
    stage: Annotated[str, typer.Option("--stage", help="as_reported or after_investigation.")] = "as_reported",
    consequence: Annotated[Optional[str], typer.Option("--consequence")] = None,
    step: Annotated[Optional[list[int]], typer.Option("--step", help="Workflow step 1-18 (repeatable).")] = None,
    factor: Annotated[Multi, typer.Option("--factor", help="Contributing factor ID or ID=note (repeatable).")] = None,
    mitigating: Annotated[Multi, typer.Option("--mitigating", help="Mitigating factor (repeatable).")] = None,
    patient_outcome: Annotated[Optional[str], typer.Option("--patient-outcome")] = None,
    staff_outcome: Annotated[Optional[str], typer.Option("--staff-outcome")] = None,
    action: Annotated[Multi, typer.Option("--action", help="Action taken (repeatable).")] = None,
    by: ByOption = None, config: ConfigOption = None, data_dir: DataDirOption = None, as_json: JsonOption = False,
) -> None:
    """Set analysis fields by id; each list given replaces the incident's list, the rest stay."""
    values: dict[str, Any] = {}
    if problem_type is not None:
        values["problem_types"] = {stage: problem_type}
    if step is not None:
        values["workflow_steps"] = step
    if factor is not None:
        values["contributing_factors"] = [{"id": i.strip(), "note": n.strip()}
                                          for i, _, n in (f.partition("=") for f in factor)]
    lists = {"mitigating_factors": mitigating, "actions": action}
    texts = {"consequence": consequence, "patient_outcome": patient_outcome, "staff_outcome": staff_outcome}
    values.update({k: v for k, v in {**lists, **texts}.items() if v is not None})
    if not values:
        raise typer.BadParameter("nothing to classify: give at least one of the options")
    with _register(config, data_dir) as (register, _db):
        _emit(register.update(incident_id, values, by or operator_name()), as_json, register)


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(f"{v['id']} ({v['note']})" if isinstance(v, dict) and v.get("note")
                         else v["id"] if isinstance(v, dict) else str(v) for v in value)
    return "" if value is None else str(value)


@app.command()
def export(
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    config: ConfigOption = None, data_dir: DataDirOption = None,
) -> None:
    """Every incident: CSV (one row each, lists joined with '; ') or JSON (with versions and strategies)."""
    if fmt not in ("csv", "json"):
        raise typer.BadParameter(f"{fmt!r}: allowed: csv, json", param_hint="--format")
    with _register(config, data_dir) as (register, _db):
        found = register.list()
        stages = list(register.taxonomy.stages)
        strategies = {i.id: recommend_for(i, register.taxonomy) for i in found}
    if fmt == "json":
        text = json.dumps([{**i.as_dict(), "strategies": [r.as_dict() for r in strategies[i.id]]} for i in found],
                          indent=2, ensure_ascii=False) + "\n"
    else:
        buffer = io.StringIO()
        fields = [f for f in FIELDS if f != "problem_types"]
        writer = csv.writer(buffer)
        writer.writerow(["id", "version", "created_at", "created_by", "updated_at", "updated_by", "event_weekday",
                         *fields, *(f"problem_types_{s}" for s in stages), "strategies"])
        for i in found:
            writer.writerow([i.id, i.version, i.created_at.isoformat(), i.created_by, i.updated_at.isoformat(),
                             i.updated_by, i.weekday, *(_cell(i.fields[f]) for f in fields),
                             *(_cell(i.fields["problem_types"].get(s, [])) for s in stages),
                             _cell([r.strategy.id for r in strategies[i.id]])])
        text = buffer.getvalue()
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, "utf-8")
        err.print(f"{len(found)} incident(s) written to {output}", highlight=False)


def _print(incident: Incident, register: IncidentRegister) -> None:
    tax, f = register.taxonomy, incident.fields
    out.print(f"[bold]incident {incident.id}[/bold] v{incident.version}: {escape(f['subject'])}", highlight=False)
    out.print(f"event {f['event_date']} ({incident.weekday}) {f['event_time']}", highlight=False)
    for name in FIELDS[3:13]:
        if f[name]:
            out.print(f"{name}: {escape(str(f[name]))}", highlight=False, soft_wrap=True)
    for stage, ids in f["problem_types"].items():
        labels = ", ".join(f"{p} ({tax.problem_types[p].label})" for p in ids if p in tax.problem_types)
        out.print(f"problem types, {tax.stages[stage].label.lower()}: {escape(labels)}", highlight=False)
    if f["consequence"]:
        out.print(f"consequence: {f['consequence']} ({tax.consequences[f['consequence']].label})", highlight=False)
    for n in f["workflow_steps"]:
        s = tax.workflow_steps[n]
        out.print(f"step {n}: {escape(s.name)} \\[{s.status}] ({escape(', '.join(s.systems))})", highlight=False)
    for name in ("contributing_factors", "mitigating_factors", "patient_outcome", "staff_outcome", "actions"):
        if f[name]:
            out.print(f"{name}: {escape(_cell(f[name]))}", highlight=False, soft_wrap=True)
    out.print("\n[bold]versions[/bold]")
    for v in incident.versions:
        out.print(f"  v{v.version} {v.changed_at.isoformat(timespec='seconds')} by {escape(v.changed_by)}: "
                  f"{escape(', '.join(v.changes))}", highlight=False, soft_wrap=True)
    out.print("\n[bold]recommended strategies[/bold]")
    found = recommend_for(incident, tax)
    for r in found:
        out.print(f"  {r.strategy.id} ({escape(r.strategy.area_name)}): {escape(r.strategy.text)}", highlight=False,
                  soft_wrap=True)
        for reason in r.reasons:
            out.print(f"    because {escape('; '.join(reason.triggers))}: {escape(reason.text)}", highlight=False,
                      soft_wrap=True)
    if not found:
        out.print("  none yet: classify the incident first")
