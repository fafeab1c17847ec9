"""Every operator command. Exit codes: 0 success, 1 a command failed (message on stderr),
2 bad usage or configuration."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import (
    cli_audit,
    cli_config,
    cli_db,
    cli_failover,
    cli_incident,
    cli_notice,
    cli_prefetch,
    cli_reconcile,
    cli_selftest,
    cli_sync,
    cli_trail,
    cli_user,
)
from .config import DICOM_RIGHTS, Settings, check_ae_title, load_settings, require_to_serve
from .cli_remote import use_token
from .core.accounts import ROLES
from .errors import ConfigurationError, TwinpacsError

app = typer.Typer(
    help="twinpacs: a two-site medical image archive that never lies about being in sync.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
conflicts_app = typer.Typer(help="Instances received twice with different content.", no_args_is_help=True)
app.add_typer(conflicts_app, name="conflicts")


@app.callback()
def _remote_token(token: Annotated[Optional[str], typer.Option(
        "--token", envvar="TWINPACS_TOKEN", show_envvar=True,
        help="API token sent to the site by the commands that call it over HTTP (sync, failover, notice...); "
             "from `twinpacs user token NAME`.")] = None) -> None:
    use_token(token)


app.add_typer(cli_sync.app, name="sync")
app.add_typer(cli_failover.app, name="failover")
app.add_typer(cli_notice.app, name="notice")
app.add_typer(cli_audit.app, name="audit")
app.add_typer(cli_config.app, name="config")
app.add_typer(cli_db.app, name="db")
app.add_typer(cli_reconcile.app, name="reconcile")
app.add_typer(cli_prefetch.app, name="prefetch")
app.add_typer(cli_incident.app, name="incident")
app.add_typer(cli_user.app, name="user")
app.command("migrate")(cli_db.migrate)
app.command("selftest")(cli_selftest.selftest)
app.command("audit-trail")(cli_trail.audit_trail)

out = Console()
err = Console(stderr=True, soft_wrap=True)  # an error stays one line for logs and grep, whatever the path lengths

ConfigOption = Annotated[Optional[Path], typer.Option("--config", "-c", help="TOML configuration file.")]
DataDirOption = Annotated[Optional[Path], typer.Option("--data-dir", help="Folder of the site's data.")]


def _settings(config: Path | None, explicit_empty: dict[str, Any] | None = None, **flags: Any) -> Settings:
    """Settings from the file and environment, with the flags that were given on top.
    An empty flag value means "not given", except the sections in `explicit_empty`."""
    overrides: dict[str, Any] = dict(explicit_empty or {})
    for dotted, value in flags.items():
        if value is not None and value != [] and value != {}:
            section, key = dotted.split("__")
            if key:
                overrides.setdefault(section, {})[key] = value
            else:
                overrides[section] = value
    return load_settings(config, overrides)


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _parse_destinations(values: list[str]) -> dict[str, str]:
    destinations = {}
    for value in values:
        ae, sep, address = value.partition("=")
        if not sep or not ae or not address:
            _fail(f"--move-destination {value!r}: expected AE=HOST:PORT", 2)
        destinations[ae] = address
    return destinations


def _parse_allowed_aes(values: list[str]) -> dict[str, dict[str, list[str]]]:
    """--allow-ae NAME[=store,find,get,move]: no "=" grants every right."""
    allowed = {}
    for value in values:
        name, sep, listed = value.partition("=")
        rights = [r.strip() for r in listed.split(",") if r.strip()] if sep else list(DICOM_RIGHTS)
        unknown = [r for r in rights if r not in DICOM_RIGHTS]
        try:
            ae = check_ae_title(name)
        except ValueError as exc:
            _fail(f"--allow-ae {value!r}: {exc}", 2)
        if unknown or not rights:
            _fail(f"--allow-ae {value!r}: expected NAME or NAME=RIGHT,... with rights among {', '.join(DICOM_RIGHTS)}", 2)
        allowed[ae] = {"rights": rights}
    return allowed


def _parse_api_tokens(values: list[str]) -> list[dict[str, str]]:
    """--api-token TOKEN=ROLE, named flag-1, flag-2... in the access trail."""
    tokens = []
    for number, value in enumerate(values, 1):
        token, sep, role = value.rpartition("=")
        if not sep or not token or role not in ROLES:
            _fail(f"--api-token …={role}: expected TOKEN=ROLE with ROLE one of {', '.join(ROLES)}", 2)
        tokens.append({"name": f"flag-{number}", "token": token, "role": role})
    return tokens


def _parse_peers(values: list[str]) -> list[dict[str, str]]:
    peers = []
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or not name or not url.startswith(("http://", "https://")):
            _fail(f"--peer {value!r}: expected NAME=http://HOST:PORT", 2)
        peers.append({"name": name, "kind": "twinpacs", "api_url": url.rstrip("/"),
                      "dicomweb_url": url.rstrip("/") + "/dicom-web"})
    return peers


@app.command()
def serve(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    dicom_port: Annotated[Optional[int], typer.Option(help="DICOM port (0 = any free port).")] = None,
    http_port: Annotated[Optional[int], typer.Option(help="HTTP port (0 = any free port).")] = None,
    hl7_port: Annotated[
        Optional[int], typer.Option(help="HL7 (MLLP) port for the RIS (0 = any free port; unset: no HL7 listener).")
    ] = None,
    ae_title: Annotated[Optional[str], typer.Option(help="This site's AE title.")] = None,
    site_name: Annotated[Optional[str], typer.Option(help="This site's stable name.")] = None,
    bind: Annotated[Optional[str], typer.Option(help="Address the listeners bind to.")] = None,
    move_destination: Annotated[
        Optional[list[str]], typer.Option(help="C-MOVE destination AE=HOST:PORT (repeatable).")
    ] = None,
    allow_ae: Annotated[
        Optional[list[str]], typer.Option(help="Admit calling AE NAME with every right, or NAME=store,find,get,move "
                                               "with those (repeatable); any other AE is rejected.")
    ] = None,
    accept_unknown_ae: Annotated[
        bool, typer.Option("--accept-unknown-ae", help="Let any calling AE store, query and retrieve (logged).")
    ] = False,
    role: Annotated[Optional[str], typer.Option(help="active or standby (first start only).")] = None,
    peer: Annotated[
        Optional[list[str]], typer.Option(help="twinpacs peer NAME=http://HOST:PORT (repeatable).")
    ] = None,
    no_peers: Annotated[
        bool, typer.Option("--no-peers", help="A single site: no peers (the same as peers = [] in the file).")
    ] = False,
    database_url: Annotated[
        Optional[str], typer.Option(help="The index database: sqlite:///PATH or postgresql+psycopg://USER@HOST/DB.")
    ] = None,
    api_token: Annotated[
        Optional[list[str]], typer.Option(help="Accept bearer token TOKEN acting as ROLE: TOKEN=ROLE (repeatable; "
                                               "replaces security.api_tokens of the file).")
    ] = None,
    accept_missing_history: Annotated[
        bool, typer.Option("--accept-missing-history",
                           help="Start although the index holds objects but no record of any previous start "
                                "(a database from before configuration history); logged and recorded.")
    ] = False,
) -> None:
    """Run one site in the foreground until SIGTERM or Ctrl-C.

    Required, from the file, the environment or these flags: site.data_dir, site.role,
    database.url, and the peers (or --no-peers for a single site)."""
    if no_peers and peer:
        _fail("--no-peers and --peer contradict each other", 2)
    settings = _settings(
        config, site__data_dir=data_dir, site__ae_title=ae_title, site__name=site_name, site__role=role,
        dicom__port=dicom_port, http__port=http_port, hl7__port=hl7_port, dicom__bind=bind, http__bind=bind,
        hl7__bind=bind,
        dicom__move_destinations=_parse_destinations(move_destination or []) or None,
        dicom__allowed_aes=_parse_allowed_aes(allow_ae or []) or None,
        dicom__accept_unknown_ae=True if accept_unknown_ae else None,
        peers__=_parse_peers(peer or []) or None, database__url=database_url,
        security__api_tokens=_parse_api_tokens(api_token or []) or None,
        explicit_empty={"peers": []} if no_peers else None,
    )
    require_to_serve(settings)
    from .serve import run_site  # imported late: the servers pull in pynetdicom and uvicorn

    run_site(settings, accept_missing_history)


@app.command("import")
def import_(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (searched recursively).")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Store DICOM files into the site's archive, with a progress bar and a summary."""
    from .app import build_site
    from .cli_local import operator
    from .core.access_trail import AccessEntry
    from .importer import import_files, summary_lines

    site = build_site(_settings(config, site__data_dir=data_dir))
    try:
        summary = import_files(site.archive, paths, show_progress=not as_json)
        site.access_trail.record_now(AccessEntry(operator(), "store", "success", "cli",
                                                 detail=f"twinpacs import: {dict(summary.counts)}, "
                                                        f"{len(summary.rejected)} rejected"))
    finally:
        site.close()
    if as_json:
        out.print_json(json.dumps(summary.as_dict()))
    else:
        for line in summary_lines(summary):
            out.print(line, highlight=False)
    if summary.rejected:
        raise typer.Exit(1)


@app.command()
def find(
    criteria: Annotated[Optional[list[str]], typer.Argument(help="Keyword=value, e.g. PatientID=P1 StudyDate=20260101-")] = None,
    level: Annotated[str, typer.Option(help="PATIENT, STUDY, SERIES or IMAGE.")] = "STUDY",
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    limit: Annotated[Optional[int], typer.Option(help="At most this many results.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Query the archive's index, with the same matching as C-FIND and QIDO-RS."""
    from .app import build_site
    from .cli_local import operator
    from .core.access_trail import AccessEntry
    from .core.model import COMPUTED_KEYS, LEVEL_KEYS
    from .core.query import build_query, parse_level

    parsed_level = parse_level(level)
    pairs: dict[str, str] = {}
    for item in criteria or []:
        keyword, sep, value = item.partition("=")
        if not sep:
            _fail(f"{item!r}: expected Keyword=value", 2)
        pairs[keyword] = value
    shown = (*LEVEL_KEYS[parsed_level], *COMPUTED_KEYS[parsed_level])
    query = build_query(parsed_level, pairs, shown, limit=limit)
    site = build_site(_settings(config, site__data_dir=data_dir))
    try:
        rows = site.archive.find(query)
        site.access_trail.record_now(AccessEntry(
            operator(), "query", "success", "cli", pairs.get("PatientID", ""), pairs.get("StudyInstanceUID", ""),
            f"twinpacs find {parsed_level.value} {' '.join(criteria or [])}: {len(rows)} result(s)"))
    finally:
        site.close()
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(*shown, title=f"{len(rows)} {parsed_level.value.lower()} result(s)")
    for row in rows:
        table.add_row(*(row.get(k, "") for k in shown))
    out.print(table)


@conflicts_app.command("list")
def conflicts_list(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    all_: Annotated[bool, typer.Option("--all", help="Include resolved conflicts.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Versions that differ from the current one and await a decision."""
    from .app import build_site

    site = build_site(_settings(config, site__data_dir=data_dir))
    try:
        rows = site.archive.conflicts(None if all_ else "open")
    finally:
        site.close()
    if as_json:
        out.print_json(json.dumps(rows, default=str))
        return
    table = Table("id", "SOPInstanceUID", "content_hash", "size", "received_at", "source", "state", "resolution",
                  title=f"{len(rows)} conflict(s)")
    for row in rows:
        table.add_row(*(str(row[c]) for c in ("id", "SOPInstanceUID", "content_hash", "size",
                                               "received_at", "source", "state", "resolution")))
    out.print(table)


@conflicts_app.command("resolve")
def conflicts_resolve(
    version_id: Annotated[int, typer.Argument(help="The conflict's id (see 'conflicts list').")],
    keep: Annotated[str, typer.Option(help="'current' keeps the current version; 'version' makes this one current.")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Decide a conflict. Nothing is deleted: the other version is retained."""
    from .app import build_site

    site = build_site(_settings(config, site__data_dir=data_dir))
    try:
        site.archive.resolve_conflict(version_id, keep)
    finally:
        site.close()
    out.print(f"conflict {version_id} resolved: kept {keep}")


@app.command()
def figures(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Counts held, and bytes written per byte received (G2)."""
    from .app import build_site

    site = build_site(_settings(config, site__data_dir=data_dir))
    try:
        data = site.archive.figures()
    finally:
        site.close()
    if as_json:
        out.print_json(json.dumps(data))
        return
    for key, value in data.items():
        out.print(f"{key:34} {value}", highlight=False)


@app.command()
def demo(
    data_dir: Annotated[Path, typer.Option(help="Where the demo sites keep their data.")] = Path("data/demo"),
    studies: Annotated[int, typer.Option(help="Synthetic studies loaded into site A.")] = 3,
) -> None:
    """Start two sites on this machine (A: 11112/8080, B: 11113/8081) with sample studies."""
    from .demo import run_demo

    run_demo(data_dir.resolve(), studies)



@app.command()
def drill(
    scenario: Annotated[str, typer.Argument(help="failover or downtime")],
    auto: Annotated[bool, typer.Option(help="Run every step without waiting for Enter.")] = False,
) -> None:
    """Rehearse a failover or a site's downtime on a private pair of sites, step by step."""
    from .drill import DRILLS, run_drill

    if scenario not in DRILLS:
        _fail(f"unknown drill {scenario!r}: choose {' or '.join(DRILLS)}", 2)
    run_drill(scenario, pause=not auto)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "pynetdicom", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        app(args=argv, prog_name="twinpacs")
    except ConfigurationError as exc:
        # escaped: messages quote TOML such as [site] or [[peers]], which is not markup
        err.print(f"[red]configuration error:[/red] {escape(exc.message)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except TwinpacsError as exc:
        err.print(f"[red]error:[/red] {escape(exc.message)}", highlight=False, soft_wrap=True)
        sys.exit(1)

