"""`twinpacs notice post|list|clear`: downtime notices on a running site, through its HTTP
API (/api/notices). Exit codes: 0 done, 1 the site refused or could not be reached, 2 usage."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from .cli_remote import ConfigOption, JsonOption, UrlOption, call, operator_name, site_url

app = typer.Typer(help="Downtime notices: shown as a banner on every page, in the API and sent to webhooks.",
                  no_args_is_help=True)
out = Console()


@app.command("post")
def post(
    title: Annotated[str, typer.Option("--title", help="One line saying what is wrong.")],
    body: Annotated[str, typer.Option("--body", help="What it means for staff, what to do instead.")] = "",
    severity: Annotated[str, typer.Option("--severity", help="info, warning or critical.")] = "warning",
    posted_by: Annotated[Optional[str], typer.Option("--by", help="Who posts it (default: your login).")] = None,
    url: UrlOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Post a notice; it shows at once on the site's pages and goes to the configured webhooks."""
    if severity not in ("info", "warning", "critical"):
        raise typer.BadParameter("must be info, warning or critical", param_hint="--severity")
    notice = call("POST", f"{site_url(url, config)}/api/notices",
                  json={"title": title, "body": body, "severity": severity, "posted_by": posted_by or operator_name()})
    if as_json:
        out.print_json(json.dumps(notice))
    else:
        out.print(f"notice {notice['id']} posted ({notice['severity']}): {notice['title']}", highlight=False)


@app.command("list")
def list_(
    all_: Annotated[bool, typer.Option("--all", help="Include cleared notices.")] = False,
    url: UrlOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Active notices, newest first (all of them with --all)."""
    found: list[dict[str, Any]] = call("GET", f"{site_url(url, config)}/api/notices",
                                       params={"all": "true" if all_ else "false"})["notices"]
    if as_json:
        out.print_json(json.dumps(found))
        return
    table = Table("id", "severity", "title", "posted", "by", "studies", "cleared",
                  title=f"{len(found)} {'' if all_ else 'active '}notice(s)")
    for n in found:
        table.add_row(str(n["id"]), n["severity"], n["title"], n["posted_at"], n["posted_by"],
                      str(len(n["studies"])), n["cleared_at"] or "")
    out.print(table)


@app.command("clear")
def clear(
    notice_id: Annotated[int, typer.Argument(help="The notice's id (see 'notice list').")],
    cleared_by: Annotated[Optional[str], typer.Option("--by", help="Who clears it (default: your login).")] = None,
    url: UrlOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Clear a notice: the banner goes away; the notice stays listed with --all."""
    notice = call("POST", f"{site_url(url, config)}/api/notices/{notice_id}/clear",
                  json={"cleared_by": cleared_by or operator_name()})
    if as_json:
        out.print_json(json.dumps(notice))
    else:
        out.print(f"notice {notice['id']} cleared at {notice['cleared_at']}: {notice['title']}", highlight=False)
