"""`twinpacs prefetch status`: per order, the prefetch job and each prior study found with its
outcome (chosen, fetched, failed, local, not-relevant) and why; and the hit rate. Read from
the site's index, so it works whether or not the site is running."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .cli_remote import ConfigOption, JsonOption

app = typer.Typer(help="Prefetching of prior studies before scheduled exams.", no_args_is_help=True)
# A pipe or a log file gets the whole table, not one squeezed to 80 columns.
out = Console(width=None if Console().is_terminal else 200)

DataDirOption = Annotated[Optional[Path], typer.Option("--data-dir", help="Folder of the site's data.")]
_STYLE = {"fetched": "green", "local": "green", "chosen": "yellow", "failed": "bold red", "not-relevant": "dim",
          "done": "green", "pending": "yellow", "running": "yellow"}


@app.command()
def status(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    accession: Annotated[Optional[str], typer.Option("--accession", help="Only the order with this accession number.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most this many orders.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """Per order: its job and every prior found, with the rule's reason or the error."""
    from .cli_local import existing_index
    from .web.api_prefetch import status as prefetch_status

    with existing_index(config, data_dir) as (settings, index):
        data = prefetch_status(settings, index.db, limit, accession)
    if as_json:
        out.print_json(json.dumps(data))
        return
    _print(data)


def _print(data: dict[str, Any]) -> None:
    hits = data["hit_rate"]
    sources = ", ".join(f"{s['name']} ({s['kind']}, {s['retrieve']})" for s in data["sources"])
    rules = data["rules"]
    out.print(f"site {data['site']} as of {data['as_of']}", highlight=False)
    if data["sources"]:
        out.print(f"sources: {sources}; rules: same_modality={rules['same_modality']} "
                  f"same_body_part={rules['same_body_part']} within_years={rules['within_years']} "
                  f"max_studies={rules['max_studies']}", highlight=False, soft_wrap=True)
    else:
        out.print("sources and rules: not in this command's configuration (give the site's --config)",
                  highlight=False)
    out.print(f"hit rate: {hits['hits']} of {hits['opened']} studies opened had their priors here "
              f"({hits['percent']})", highlight=False)
    if not data["orders"]:
        out.print("no prefetch jobs")
        return
    for entry in data["orders"]:
        order, job = entry["order"], entry["job"]
        state = f"[{_STYLE.get(job['state'], 'bold red')}]{job['state']}[/]"
        out.print(f"\norder {escape(order['placer_number'])} accession {escape(order['accession_number'])} "
                  f"patient {escape(order['patient_id'])} {order['priority']} scheduled {order['scheduled_at'] or '-'}"
                  f" ({order['status']}): job {state}, {job['attempts']} attempt(s)", highlight=False, soft_wrap=True)
        if job["detail"]:
            out.print(f"  {escape(job['detail'])}", highlight=False, soft_wrap=True)
        if entry["priors"]:
            table = Table("source", "StudyInstanceUID", "date", "modalities", "state", "reason / error")
            for p in entry["priors"]:
                why = p["reason"] + (f" - error: {p['error']}" if p["error"] else "")
                table.add_row(p["source"], p["study_instance_uid"], p["study_date"], p["modalities"],
                              f"[{_STYLE.get(p['state'], '')}]{p['state']}[/]", escape(why))
            out.print(table)
