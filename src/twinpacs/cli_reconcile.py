"""`twinpacs reconcile list|apply|merges|unmerge`: the reconciliation list of a running site
and the corrections made from it, through its HTTP API (/api/reconciliation, /api/merges).
Every correction needs a reason and is recorded in the operator log with who made it.
Exit codes: 0 done, 1 the site refused or could not be reached, 2 usage."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from .cli_remote import ConfigOption, JsonOption, UrlOption, call, operator_name, site_url

app = typer.Typer(help="Studies that do not match their order, orders the terminology map lacks, patient merges.",
                  no_args_is_help=True)
out = Console()
ReasonOption = Annotated[str, typer.Option("--reason", help="Why; recorded in the operator log.")]
ByOption = Annotated[Optional[str], typer.Option("--by", help="Who makes the correction (default: your login).")]
LimitOption = Annotated[int, typer.Option("--limit", min=1, help="At most this many items of each kind.")]


def _show(value: Any, as_json: bool, text: str) -> None:
    if as_json:
        out.print_json(json.dumps(value))
    else:
        out.print(text, highlight=False, soft_wrap=True)


@app.command("list")
def list_(limit: LimitOption = 200, url: UrlOption = None, config: ConfigOption = None,
          as_json: JsonOption = False) -> None:
    """What needs an administrator: studies without an order, patients that disagree, unmapped procedures."""
    found = call("GET", f"{site_url(url, config)}/api/reconciliation", params={"limit": limit})
    if as_json:
        out.print_json(json.dumps(found))
        return
    totals = ", ".join(f"{kind} {n}" for kind, n in found["totals"].items())
    out.print(f"reconciliation list: {totals}", highlight=False)
    for item in found["items"]:
        out.print(f"\n[{item['kind']}] {_subject(item)}", highlight=False, soft_wrap=True, markup=False)
        lines = [item["problem"]]
        lines += [f"{d['attribute']}: {d['study']!r} in the images, {d['expected']!r} in the {d['source']}"
                  for d in item["differences"]]
        if item["candidates"]:
            lines.append(f"orders of this patient: {', '.join(item['candidates'])}")
        lines.append(f"-> {item['action']}")
        for line in lines:
            out.print(f"  {line}", highlight=False, soft_wrap=True, markup=False)


def _subject(item: dict[str, Any]) -> str:
    study, order = item["study"], item["order"]
    parts = []
    if study:
        p = study["patient"]
        parts.append(f"study {study['uid']} ({p['id']} {p['name']}, {study['study_date']}, {study['modalities']})")
    if order:
        parts.append(f"order {order['placer_number']} ({order['accession_number']}, {order['patient']['id']})")
    return ", ".join(parts)


@app.command("apply")
def apply(
    study: Annotated[str, typer.Argument(help="Study Instance UID of the stored study.")],
    reason: ReasonOption,
    accession: Annotated[Optional[str], typer.Option("--accession", help="The order's accession number.")] = None,
    order: Annotated[Optional[str], typer.Option("--order", help="The order's placer number.")] = None,
    by: ByOption = None,
    url: UrlOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Link a study to its order: its accession number and patient become the order's in the
    index and in DICOMweb metadata; the stored files are not rewritten."""
    if bool(accession) == bool(order):
        raise typer.BadParameter("give exactly one of --accession or --order", param_hint="--accession/--order")
    done = call("POST", f"{site_url(url, config)}/api/reconciliation/apply",
                json={"study": study, "accession_number": accession or "", "placer_number": order or "",
                      "reason": reason, "actor": by or operator_name()})
    changes = "; ".join(f"{k}: {v['before']!r} -> {v['after']!r}" for k, v in done["changes"].items())
    _show(done, as_json, f"study {study} linked to order {done['order']} ({done['accession_number']}): "
          + (changes or "it already said so, nothing changed"))


@app.command("merges")
def merges(limit: LimitOption = 200, url: UrlOption = None, config: ConfigOption = None,
           as_json: JsonOption = False) -> None:
    """Patient merges (HL7 A40) as applied, newest first."""
    found = call("GET", f"{site_url(url, config)}/api/merges", params={"limit": limit})["merges"]
    if as_json:
        out.print_json(json.dumps(found))
        return
    table = Table("id", "at", "prior", "surviving", "studies", "orders", "reversed", title=f"{len(found)} merge(s)")
    for m in found:
        table.add_row(str(m["id"]), m["at"], m["prior"]["id"], m["surviving"]["id"], str(len(m["studies"])),
                      str(len(m["orders"])), f"{m['reversed_at']} by {m['reversed_by']}" if m["reversed"] else "")
    out.print(table)


@app.command("unmerge")
def unmerge(
    merge_id: Annotated[int, typer.Argument(help="The merge's id (see 'reconcile merges').")],
    reason: ReasonOption,
    by: ByOption = None,
    url: UrlOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reverse a merge by its record: its studies and orders go back to the prior patient."""
    done = call("POST", f"{site_url(url, config)}/api/merges/{merge_id}/reverse",
                json={"reason": reason, "actor": by or operator_name()})
    _show(done, as_json, f"merge {merge_id} reversed: {len(done['studies'])} study(ies) and {len(done['orders'])} "
          f"order(s) back under {done['prior']}")
