"""`twinpacs audit`: compare this site (A, --url) with another archive (B) and list exactly
which patients, studies, series and instances differ (G5).

Exit codes: 0 identical (and, with --deep, every file intact); 1 differences found;
2 bad usage; 3 the audit could not be completed (an archive unreachable or answering garbage).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .audit_clients import (
    Copier,
    HttpDigestSource,
    cfind_listing,
    qido_listing,
    site_deep_check,
    site_listing,
)
from .cli_remote import auth_headers
from .core.audit import AuditLevel, AuditReport, Copy, Where, audit, repair_plan
from .core.audit_presence import TreeSource
from .errors import TwinpacsError

app = typer.Typer(help="Audit this site against another archive (G5).", add_completion=False)
out = Console()
if not out.is_terminal:  # in a pipe or a log, wide enough that no UID is folded (it can be grepped)
    out.width = 400
err = Console(stderr=True, soft_wrap=True)

_SIDE = {Where.MISSING_ON_A: "missing on A", Where.MISSING_ON_B: "missing on B", Where.DIFFERS: "differs"}
_TIMEOUT = httpx.Timeout(300.0, connect=10.0)  # a digest of a large archive is one long scan


@app.callback(invoke_without_command=True)
def run_audit(
    against: Annotated[Optional[str], typer.Option(help="Another twinpacs site's HTTP URL: compared by content hash.")] = None,
    against_qido: Annotated[Optional[str], typer.Option(help="A third-party DICOMweb base URL: presence by QIDO-RS.")] = None,
    against_dimse: Annotated[Optional[str], typer.Option(help="A third-party archive AE@HOST:PORT: presence by C-FIND.")] = None,
    url: Annotated[Optional[str], typer.Option(help="This site's HTTP URL (default: from --config, else http://127.0.0.1:8080).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="TOML configuration of this site.")] = None,
    repair: Annotated[bool, typer.Option(help="Copy what is missing on either side (twinpacs sites), then re-audit.")] = False,
    deep: Annotated[bool, typer.Option(help="Also re-read and re-hash every file this site holds.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Exit 0 when identical, 1 when anything differs, 3 when the audit could not be done."""
    if sum(x is not None for x in (against, against_qido, against_dimse)) != 1:
        _usage("give exactly one of --against, --against-qido, --against-dimse")
    if repair and against is None:
        _usage("--repair copies between twinpacs sites only (--against)")
    self_url = (url or _configured_url(config)).rstrip("/")
    try:
        with httpx.Client(timeout=_TIMEOUT, headers=auth_headers()) as client:
            code = _run(client, self_url, against, against_qido, against_dimse, repair, deep, as_json)
    except (TwinpacsError, httpx.HTTPError) as exc:
        err.print(f"[red]audit could not be completed:[/red] {getattr(exc, 'message', exc)}", highlight=False)
        raise typer.Exit(3) from None
    raise typer.Exit(code)


def _run(client: httpx.Client, self_url: str, against: str | None, qido: str | None, dimse: str | None,
         repair: bool, deep: bool, as_json: bool) -> int:
    report = _audit_once(client, self_url, against, qido, dimse)
    document: dict[str, Any] = {"mode": "content" if against else "presence", **report.as_dict()}
    failed = False
    if repair and not report.identical:
        assert against is not None
        copier = Copier(client, self_url, against, report.a, report.b)
        copied, errors = _repair(copier, repair_plan(report), quiet=as_json)
        document["repair"] = {"copied": copied, "failed": errors}
        failed = bool(errors)
        if not as_json:
            _print(report, "before repair")
            out.print(f"repair: {copied} instance(s) copied, {len(errors)} failed", highlight=False)
        report = _audit_once(client, self_url, against, qido, dimse)
        document["after_repair"] = report.as_dict()
    if deep:
        document["deep"] = site_deep_check(client, self_url)
        failed = failed or bool(document["deep"]["problems"])
    if as_json:
        out.print_json(json.dumps(document))
    else:
        _print(report, "after repair" if "repair" in document else "")
        if deep:
            _print_deep(document["deep"])
    return 0 if report.identical and not failed else 1


def _audit_once(client: httpx.Client, self_url: str, against: str | None, qido: str | None,
                dimse: str | None) -> AuditReport:
    if against is not None:
        return audit(HttpDigestSource(client, self_url), HttpDigestSource(client, against.rstrip("/")))
    name, entries = site_listing(client, self_url)
    other = qido_listing(client, qido) if qido else cfind_listing(str(dimse))
    return audit(TreeSource(name, entries), TreeSource(qido or str(dimse), other))


def _repair(copier: Copier, plan: list[Copy], quiet: bool) -> tuple[int, list[dict[str, str]]]:
    errors: list[dict[str, str]] = []
    columns = (TextColumn("repair"), BarColumn(), MofNCompleteColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, disable=quiet) as progress:
        task = progress.add_task("copy", total=sum(c.size for c in plan))
        done = 0
        for item in plan:
            try:
                copier.copy(item)
                done += 1
            except (TwinpacsError, httpx.HTTPError) as exc:
                errors.append({"SOPInstanceUID": item.SOPInstanceUID, "error": str(getattr(exc, "message", exc))})
            progress.update(task, advance=item.size)
    return done, errors


def _print(report: AuditReport, when: str) -> None:
    title = f"audit {report.a} (A) against {report.b} (B)" + (f", {when}" if when else "")
    out.print(title, style="bold", highlight=False)
    out.print(f"A holds {report.a_top.instances} instance(s), B holds {report.b_top.instances}; "
              f"{report.requests} digest request(s) per side", highlight=False)
    if report.identical:
        out.print("[green]identical[/green]: the top digests agree")
        return
    for level in AuditLevel:
        found = report.at(level)
        if found:
            out.print(_table(level, found))


def _table(level: AuditLevel, found: list[Any]) -> Table:
    columns = {
        AuditLevel.PATIENT: ("PatientID", "PatientName"),
        AuditLevel.STUDY: ("StudyInstanceUID", "PatientID", "PatientName", "AccessionNumber", "StudyDate"),
        AuditLevel.SERIES: ("SeriesInstanceUID", "StudyInstanceUID", "Modality"),
        AuditLevel.INSTANCE: ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "PatientID"),
    }[level]
    table = Table("where", *columns, "instances A", "instances B", title=f"{len(found)} {level.value}(s) differ")
    for d in found:
        table.add_row(_SIDE[d.where], *(d.context.get(c, "") for c in columns),
                      str(d.a.instances if d.a else 0), str(d.b.instances if d.b else 0))
    return table


def _print_deep(result: dict[str, Any]) -> None:
    problems = result["problems"]
    out.print(f"deep check of {result['site']}: {result['checked']} file(s) re-hashed, "
              f"{len(problems)} problem(s)", highlight=False)
    if problems:
        table = Table("problem", "SOPInstanceUID", "StudyInstanceUID", "PatientID", "detail")
        for p in problems:
            table.add_row(p["problem"], p["SOPInstanceUID"], p["StudyInstanceUID"], p["PatientID"], p["detail"])
        out.print(table)


def _configured_url(config: Path | None) -> str:
    if config is None:
        return "http://127.0.0.1:8080"
    from .config import load_settings

    settings = load_settings(config)
    host = "127.0.0.1" if settings.http.bind in ("0.0.0.0", "::") else settings.http.bind
    return f"http://{host}:{settings.http.port}"


def _usage(message: str) -> None:
    err.print(f"[red]usage:[/red] {message}", highlight=False)
    raise typer.Exit(2)
