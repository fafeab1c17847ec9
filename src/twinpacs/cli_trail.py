"""`twinpacs audit-trail`: the site's access trail (who accessed which patient data, when, from
where), read from its own index: no running site needed. Not `twinpacs audit`, which checks the
store's objects against the index."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .cli_remote import ConfigOption
from .core.access_trail import AccessEntry, trail_filter
from .core.archive import utcnow
from .core.atna import audit_messages
from .core.principal import Principal
from .errors import InvalidInput

out = Console(width=None if Console().is_terminal else 200)
FORMATS = ("table", "jsonl", "atna")
COLUMNS = ("at", "action", "outcome", "door", "principal", "role", "address", "patient_id", "study_uid", "detail")


def audit_trail(
    since: Annotated[str, typer.Option(help="From this ISO 8601 date or time (UTC unless it has a zone).")] = "",
    until: Annotated[str, typer.Option(help="Up to this ISO 8601 date or time.")] = "",
    patient: Annotated[str, typer.Option(help="Only entries naming this Patient ID.")] = "",
    study: Annotated[str, typer.Option(help="Only entries naming this Study Instance UID.")] = "",
    who: Annotated[str, typer.Option(help="Only entries by this principal (user, token, AE title...).")] = "",
    action: Annotated[str, typer.Option(help="Only this action (query, retrieve, view, export, ...).")] = "",
    limit: Annotated[int, typer.Option(help="At most this many entries, newest first.")] = 1000,
    fmt: Annotated[str, typer.Option("--format", help="table, jsonl (one JSON object per line) or atna "
                                                       "(DICOM PS3.15 audit messages, XML).")] = "table",
    config: ConfigOption = None,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Folder of the site's data.")] = None,
) -> None:
    """Who accessed which patient data, when, from where, with which outcome (newest first)."""
    from .cli_local import existing_index
    from .index.access_trail import SqlAccessTrail

    if fmt not in FORMATS:
        raise typer.BadParameter(f"{fmt!r}: allowed: {', '.join(FORMATS)}", param_hint="--format")
    try:
        wanted = trail_filter(since, until, patient, study, who, action, limit)
    except InvalidInput as exc:
        raise typer.BadParameter(exc.message) from None
    with existing_index(config, data_dir) as (settings, index):
        trail = SqlAccessTrail(index.db, settings.site_name, utcnow)
        records = trail.entries(wanted)
        # The trail names patients: reading it is an access too.
        asked = " ".join(f"--{k} {v}" for k, v in (("since", since), ("until", until), ("patient", patient),
                                                    ("study", study), ("who", who), ("action", action)) if v)
        trail.record_now(AccessEntry(Principal(getpass.getuser(), "operator", "local"), "query", "success", "cli",
                                     patient, study, f"twinpacs audit-trail {asked}".strip()))
    if fmt == "atna":
        typer.echo(audit_messages(records).decode("utf-8"))
    elif fmt == "jsonl":
        for record in records:
            typer.echo(json.dumps(record.as_dict(), ensure_ascii=False))
    else:
        table = Table(*COLUMNS, title=f"{len(records)} access trail entr{'y' if len(records) == 1 else 'ies'}")
        for record in records:
            row = record.as_dict()
            row["at"] = record.at.isoformat(timespec="seconds")
            table.add_row(*(escape(str(row[c])) for c in COLUMNS))
        out.print(table)
