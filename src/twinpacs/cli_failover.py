"""`twinpacs failover plan|run`: the gate's verdict, and the switch it guards."""

from __future__ import annotations

import json
import threading
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from .cli_remote import ConfigOption, JsonOption, UrlOption, auth_headers, call, operator_name, site_url

app = typer.Typer(help="Planned switch of the active site, guarded by the sync gate.", no_args_is_help=True)
out = Console()
TargetOption = Annotated[str, typer.Option("--to", help="The peer site to make active.")]
STUDY_COLUMNS = ("StudyInstanceUID", "PatientID", "PatientName", "AccessionNumber", "StudyDate", "instances_missing")


def _print_plan(plan: dict[str, Any]) -> None:
    if plan["ready"]:
        out.print(f"READY: {plan['target']} is confirmed to hold everything this site holds.", style="bold green")
        return
    out.print(f"NOT READY to fail over to {plan['target']}:", style="bold red")
    for reason in plan["reasons"]:
        out.print(f"  - {reason}", highlight=False, soft_wrap=True)
    if plan["missing_studies"]:
        table = Table(*STUDY_COLUMNS, title=f"{len(plan['missing_studies'])} stud(ies) {plan['target']} lacks")
        for study in plan["missing_studies"]:
            table.add_row(*(str(study[c]) for c in STUDY_COLUMNS))
        out.print(table)
    if plan.get("missing_ris"):
        table = Table("kind", "key", "changed_at", title=f"{len(plan['missing_ris'])} RIS change(s) {plan['target']} lacks")
        for change in plan["missing_ris"]:
            table.add_row(str(change["kind"]), str(change["key"]), str(change["changed_at"]))
        out.print(table)


@app.command()
def plan(to: TargetOption, url: UrlOption = None, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Would a failover to the peer be safe now? Exit code 0 only when ready."""
    result = call("GET", f"{site_url(url, config)}/api/failover/plan", params={"to": to})
    if as_json:
        out.print_json(json.dumps(result))
    else:
        _print_plan(result)
    raise typer.Exit(0 if result["ready"] else 1)


@app.command()
def run(
    to: TargetOption,
    url: UrlOption = None,
    config: ConfigOption = None,
    force: Annotated[bool, typer.Option(help="Switch even though the target lacks studies (needs --reason).")] = False,
    reason: Annotated[str, typer.Option(help="Why; recorded in the operator log.")] = "",
    actor: Annotated[str, typer.Option(help="Who is switching (default: your login name).")] = "",
    drain_timeout: Annotated[float, typer.Option(help="Seconds to wait for the queue to drain.")] = 120.0,
    as_json: JsonOption = False,
) -> None:
    """Perform the switch: this site stops taking stores, the queue drains, roles switch."""
    base = site_url(url, config)
    if force and not reason.strip():
        out.print("error: --force needs --reason", style="red")
        raise typer.Exit(2)
    body = {"to": to, "force": force, "reason": reason, "actor": actor or operator_name(),
            "drain_timeout_s": drain_timeout}
    done = threading.Event()
    if not as_json:
        threading.Thread(target=_show_progress, args=(base, to, done), daemon=True).start()
    try:
        result = call("POST", f"{base}/api/failover/run", json=body, timeout=drain_timeout + 60)
    finally:
        done.set()
    if as_json:
        out.print_json(json.dumps(result))
    elif result.get("forced"):
        out.print(f"FORCED failover to {to}: {len(result['missing_studies'])} study(ies) may be missing there; "
                  "a notice was posted and an incident drafted.", style="bold red")
    else:
        out.print(f"{to} is now the active site.", style="bold green")


def _show_progress(base: str, target: str, done: threading.Event) -> None:
    """Poll the sync status while the site drains its queue."""
    while not done.wait(1.0):
        try:
            status = httpx.get(f"{base}/api/sync", timeout=5, headers=auth_headers()).json()
        except (httpx.HTTPError, ValueError):
            continue
        for peer in status.get("peers", []):
            if peer["name"] == target:
                out.print(f"draining to {target}: {peer['pending']} pending, {peer['confirmed']} confirmed", highlight=False)
