"""`twinpacs sync status`: exact counts per peer. Exit code 0 only when fully in sync."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .cli_remote import ConfigOption, JsonOption, UrlOption, call, site_url

app = typer.Typer(help="Replication state between this site and its peers.", no_args_is_help=True)
# A pipe or a log file gets the whole table, not one squeezed to 80 columns.
out = Console(width=None if Console().is_terminal else 160)

COLUMNS = ("name", "held", "confirmed", "pending", "failed", "unverified", "not_queued", "ris_pending",
           "oldest_pending_age_s", "rate_per_s", "eta_s", "percent")


@app.command()
def status(url: UrlOption = None, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Per peer: held here, confirmed there (by content hash), pending, failed, unverified."""
    data = call("GET", f"{site_url(url, config)}/api/sync")
    if as_json:
        out.print_json(json.dumps(data))
    else:
        out.print(f"site {data['site']} ({data['role']}; active site: {data['active_site']}) as of {data['as_of']}",
                  highlight=False)
        table = Table(*COLUMNS)
        for peer in data["peers"]:
            table.add_row(*("" if peer[c] is None else str(peer[c]) for c in COLUMNS))
        out.print(table)
        for peer in data["peers"]:
            if peer["last_error"]:
                out.print(f"{peer['name']}: last error: {peer['last_error']}", highlight=False, soft_wrap=True)
        out.print("IN SYNC" if data["in_sync"] else "NOT IN SYNC", style="bold green" if data["in_sync"] else "bold red")
    raise typer.Exit(0 if data["in_sync"] else 1)


@app.command()
def retry(
    peer: Annotated[str, typer.Option("--peer", help="The peer whose failed objects go back into the queue.")],
    url: UrlOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Put objects that were given up on (failed) back into the queue for a peer."""
    result = call("POST", f"{site_url(url, config)}/api/replication/retry", json={"peer": peer})
    if as_json:
        out.print_json(json.dumps(result))
    else:
        out.print(f"{peer}: {result.get('requeued', result)} failed object(s) queued again", highlight=False)
