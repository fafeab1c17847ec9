"""`twinpacs selftest`: the regression protocol after an upgrade. Exit code 0 only when every
step passed; the output names each failed step and why."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from .cli_remote import ConfigOption, JsonOption, auth_headers, err, site_url
from .errors import TwinpacsError
from .selftest import FAILED, OK, SLOWER, Report, SelfTest, Step

# A pipe or a log file gets the whole table, not one squeezed to 80 columns.
out = Console(width=None if Console().is_terminal else 160)

_STATUS = {OK: "[green]ok[/green]", FAILED: "[bold red]FAILED[/bold red]", "skipped": "[yellow]skipped[/yellow]"}


def selftest(
    url: Annotated[Optional[str], typer.Option("--url", help="The site's HTTP address, e.g. http://127.0.0.1:8080 "
                                                       "(required unless --config).")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
    timeout: Annotated[float, typer.Option("--timeout", min=1.0, help="Seconds to wait for each peer to "
                                                                     "confirm the test study.")] = 30.0,
) -> None:
    """Store a marked test study, find and retrieve it by DIMSE and DICOMweb, wait for each peer
    to hold it by content hash, then remove it everywhere; each step timed against the last run."""
    if not url and config is None:
        err.print("[red]error:[/red] give the site's address with --url URL (or its --config FILE)")
        raise typer.Exit(2)
    try:
        report = SelfTest(site_url(url, config), replication_timeout=timeout, headers=auth_headers(),
                          dicom_tls=_dicom_tls(config)).run()
    except TwinpacsError as exc:  # e.g. an unreadable --config
        err.print(f"[red]error:[/red] {exc.message}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
    else:
        _print(report)
    raise typer.Exit(0 if report.passed else 1)


def _dicom_tls(config: Path | None) -> ssl.SSLContext | None:
    """With the site's configuration, a site whose DICOM port is TLS only is called as the site
    calls its peers: its own certificate, trusting dicom.tls_remote_ca_file."""
    if config is None:
        return None
    from .config import load_settings
    from .dimse.tls import client_context  # pynetdicom: imported only when needed

    dicom = load_settings(config).dicom
    return client_context(dicom) if dicom.tls_cert_file is not None else None


def _print(report: Report) -> None:
    out.print(f"self-test of site {report.site or '?'} at {report.url}, test study {report.study}",
              highlight=False, soft_wrap=True)
    out.print(f"previous self-test: {report.previous_at or 'none recorded'}; steps over {SLOWER:g}x its time "
              "are flagged", highlight=False, soft_wrap=True)
    table = Table("step", "result", "seconds", "previous", "detail")
    for step in report.steps:
        table.add_row(step.name, _STATUS.get(step.status, step.status), _seconds(step),
                      "" if step.previous_seconds is None else f"{step.previous_seconds:.3f}", step.detail)
    out.print(table)
    for note in report.notes:
        out.print(f"note: {note}", highlight=False, soft_wrap=True)
    for step in report.failed:
        err.print(f"[red]failed:[/red] {step.name}: {step.detail}", highlight=False, soft_wrap=True)
    out.print("SELF-TEST PASSED" if report.passed else "SELF-TEST FAILED",
              style="bold green" if report.passed else "bold red")


def _seconds(step: Step) -> str:
    if step.seconds is None:
        return ""
    if step.slower and step.previous_seconds:
        return f"[bold yellow]{step.seconds:.3f} ({step.seconds / step.previous_seconds:.1f}x slower)[/bold yellow]"
    return f"{step.seconds:.3f}"
