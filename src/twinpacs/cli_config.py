"""`twinpacs config check|show|history|diff`: validate a configuration, show what a running
site uses, list its starts and compare two starts or two files (G7). Secrets are masked
everywhere (config.masked)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from .cli_remote import ConfigOption, JsonOption, UrlOption, call, site_url
from .config import Settings, describe, load_settings, masked, require_to_serve
from .config_source import flatten_raw
from .errors import ConfigurationError, TwinpacsError
from .fingerprint import diff, history_rows

app = typer.Typer(help="Validate, show and compare configurations.", no_args_is_help=True)
# A pipe or a log file gets whole lines, not ones squeezed to 80 columns.
out = Console(width=None if Console().is_terminal else 200, highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DataDirOption = Annotated[Optional[Path], typer.Option("--data-dir", help="Read the site's index directly: its data folder.")]
DatabaseUrlOption = Annotated[
    Optional[str], typer.Option("--database-url", help="With --data-dir: the index database if not the folder's SQLite file.")
]


# -- check and show ------------------------------------------------------------------------------

@app.command()
def check(
    file: Annotated[Path, typer.Argument(help="The TOML configuration file to validate.")],
    descriptions: Annotated[bool, typer.Option("--describe", help="Add each setting's description.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Validate FILE as `serve` would, print every setting marking defaults, check the database.

    The environment applies as it would to `serve`. Exit 2 on a configuration error (naming the
    key, the file and the line), 1 on a database error."""
    settings = load_settings(file)
    require_to_serve(settings)
    findings = _database_findings(settings.database_url)
    failed = findings is not None and any(f["level"] == "error" for f in findings)
    if as_json:
        out.print_json(json.dumps({"file": str(file), "valid": True, "settings": settings.effective(),
                                   "database": findings}))
    else:
        out.print(f"configuration {file}: valid", style="bold green")
        _print_entries(settings.effective(), descriptions)
        out.print()
        if findings is None:
            out.print("database checks unavailable", style="yellow")
        else:
            out.print(f"database checks ({masked('database.url', settings.database_url)}):", markup=False)
            for f in findings:
                style = {"ok": "green", "warning": "yellow", "error": "bold red"}.get(f["level"], "")
                out.print(f"  {f['level']:8} {f['check']}: {f['detail']}", style=style, markup=False)
    raise typer.Exit(1 if failed else 0)


@app.command()
def show(
    effective: Annotated[bool, typer.Option("--effective", help="What the running site uses (GET /api/config).")] = False,
    url: UrlOption = None,
    config: ConfigOption = None,
    descriptions: Annotated[bool, typer.Option("--describe", help="Add each setting's description.")] = False,
    as_json: JsonOption = False,
) -> None:
    """What the running site uses (--effective), or what --config FILE gives here.

    Secrets are masked. With --effective, also what changed since the site's previous start."""
    if effective:
        data = call("GET", f"{site_url(url, config)}/api/config")
    elif config is not None:
        settings = load_settings(config)
        data = {"config_file": str(config), "settings": settings.effective()}
    else:
        raise ConfigurationError("give --effective (the running site's configuration) or --config FILE")
    if as_json:
        out.print_json(json.dumps(data))
        return
    if effective:
        start = data.get("start") or {}
        out.print(f"site {data['site']}: start #{start.get('id', '?')} at {start.get('started_at', '?')}, "
                  f"fingerprint {str(start.get('fingerprint', ''))[:12]}, file {data.get('config_file') or '(none)'}",
                  markup=False)
    _print_entries(data["settings"], descriptions)
    changes = data.get("changed_since_previous_start")
    if effective and changes is not None:
        out.print()
        _print_changes(changes, f"changed since the previous start (#{data.get('previous_start_id')})")


def _print_entries(entries: dict[str, dict[str, Any]], descriptions: bool = False) -> None:
    width = max((len(k) for k in entries), default=10) + 2
    for key, entry in entries.items():
        marker = _marker(key, entry)
        line = f"{key:{width}}{json.dumps(entry['value']):40} {marker}"
        if descriptions:
            line += f"  # {describe(key)}"
        out.print(line, markup=False, style="dim" if marker == "(default)" else "")


def _marker(key: str, entry: dict[str, Any]) -> str:
    source = entry.get("source") or ("explicit" if entry.get("explicit") else "default")
    if source == "env":
        return f"env {'TWINPACS_' + key.split('[')[0].replace('.', '__').upper()}"
    return "(default)" if source == "default" else source


def _print_changes(changes: dict[str, Any], title: str) -> None:
    from .fingerprint import Change

    settings = [Change(**c) for c in changes["settings"]]
    environment = [Change(**c) for c in changes["environment"]]
    if not settings and not environment:
        out.print(f"{title}: nothing")
        return
    out.print(f"{title}:", style="bold yellow")
    for c in settings:
        out.print(f"  {c.kind:13} {c.describe()}", markup=False)
    for c in environment:
        out.print(f"  environment  {c.describe()}", markup=False)


def _database_findings(url: str) -> list[dict[str, str]] | None:
    """The index's health checks (engine, WAL, indexes, statistics), None where unavailable."""
    try:
        from .index.health import check_database
    except ImportError:
        return None
    try:
        return [{"level": f.level, "check": f.check, "detail": f.detail} for f in check_database(url)]
    except Exception as exc:  # a database that cannot be reached is a finding, not a traceback
        return [{"level": "error", "check": "connect", "detail": masked("database.url", str(exc))}]


# -- history and diff ----------------------------------------------------------------------------

class _Starts:
    """The start history, from a running site (--url) or read from its index directly
    (--config FILE, or --data-dir DIR [--database-url URL])."""

    def __init__(self, url: str | None, config: Path | None, data_dir: Path | None, database_url: str | None) -> None:
        self._url: str | None = None
        self._store: Any = None
        if data_dir is None and database_url is None and config is None:
            self._url = site_url(url, None)
            return
        if url:
            raise ConfigurationError("give either --url or the site's files (--config, --data-dir), not both")
        overrides: dict[str, Any] = {}
        if data_dir is not None:
            overrides["site"] = {"data_dir": data_dir}
        if database_url:
            overrides["database"] = {"url": database_url}
        if config is None and data_dir is None:
            raise ConfigurationError("--database-url needs --data-dir (or give --config FILE)")
        self._store = _open_index(load_settings(config, overrides))

    def rows(self) -> list[dict[str, Any]]:
        if self._url:
            return list(call("GET", f"{self._url}/api/config/history")["starts"])
        return history_rows(self._store.all())

    def get(self, start_id: int) -> dict[str, Any]:
        if self._url:
            return dict(call("GET", f"{self._url}/api/config/history/{start_id}"))
        start = self._store.get(start_id)
        if start is None:
            raise TwinpacsError(f"no recorded start with id {start_id}")
        return dict(start.as_dict())


def _open_index(settings: Settings) -> Any:
    from .index.config_starts import SqlConfigStarts
    from .index.database import Database

    url = settings.database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise TwinpacsError(f"no index at {url}: check --data-dir / database.url")  # never create an empty one
    return SqlConfigStarts(Database(url))


@app.command()
def history(
    url: UrlOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every recorded start: time, fingerprint, version, keys changed since the one before.

    From the running site (--url, the default) or its index read directly (--config FILE, or
    --data-dir DIR [--database-url URL])."""
    rows = _Starts(url, config, data_dir, database_url).rows()
    if as_json:
        out.print_json(json.dumps({"starts": rows}))
        return
    out.print(f"{'id':>5}  {'started at (UTC)':32} {'fingerprint':12}  {'twinpacs':10} changed  file", style="bold")
    for r in rows:
        changed = "first" if r["changed_settings"] is None else f"{r['changed_settings']}+{r['changed_environment']}"
        out.print(f"{r['id']:>5}  {r['started_at']:32} {r['fingerprint'][:12]}  {str(r['twinpacs']):10} "
                  f"{changed:8} {r['source']}", markup=False, style="yellow" if changed not in ("first", "0+0") else "")
    out.print(f"{len(rows)} start(s); changed = settings+environment keys changed since the previous start",
              style="dim")


@app.command("diff")
def diff_command(
    old: Annotated[Optional[str], typer.Argument(help="A TOML file or a start id (see `config history`); "
                                                     "default: the second-to-last start.")] = None,
    new: Annotated[Optional[str], typer.Argument(help="A TOML file or a start id; default: the last start.")] = None,
    url: UrlOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """What changed between two starts, two files, or a file and a start.

    Settings added, removed, changed, and moved between default and explicit; for two starts
    also the environment (versions, OS, database engine). Files are read without the
    environment. With no arguments: the last two starts. Exit 0 when identical, 1 when
    something differs."""
    starts: _Starts | None = None

    def history_source() -> _Starts:
        nonlocal starts
        starts = starts or _Starts(url, config, data_dir, database_url)
        return starts

    if new is None:
        rows = history_source().rows()
        wanted = 1 if old is not None else 2
        if len(rows) < wanted:
            raise TwinpacsError(f"{len(rows)} start(s) recorded: nothing to compare with")
        new = str(rows[-1]["id"])
        old = old if old is not None else str(rows[-2]["id"])
    assert old is not None
    before, after = _side(old, history_source), _side(new, history_source)
    changes = diff(before["settings"], after["settings"], before.get("environment"), after.get("environment"))
    if as_json:
        out.print_json(json.dumps({"old": before["label"], "new": after["label"], **changes.as_dict()}, default=str))
    else:
        out.print(f"{before['label']} -> {after['label']}", markup=False, style="bold")
        _print_changes(changes.as_dict(), "differences")
    raise typer.Exit(0 if changes.empty else 1)


def _side(ref: str, history_source: Any) -> dict[str, Any]:
    """A start (an id that is not a file name) or a file: settings, environment and a label."""
    if ref.isdigit() and not Path(ref).exists():
        start = history_source().get(int(ref))
        return {"label": f"start #{start['id']} ({start['started_at']})", "settings": start["settings"],
                "environment": start["environment"]}
    return {"label": f"file {ref}", "settings": _file_entries(Path(ref)), "environment": None}


def _file_entries(path: Path) -> dict[str, dict[str, Any]]:
    """A file's effective settings without the environment. A file this version refuses (an
    old installation's, say) is compared as written, over this version's defaults."""
    try:
        return load_settings(path, environment=False).effective()
    except ConfigurationError as exc:
        if not path.is_file():
            raise
        err.print(f"note: {path} does not validate here, compared as written:\n  {exc.message}", markup=False)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from None
    defaults = load_settings(overrides={"site": {"data_dir": "."}}, environment=False).effective()
    flat, lists = flatten_raw(raw)
    replaced = lists | {k for k, v in flat.items() if isinstance(v, list)}
    entries = {k: v for k, v in defaults.items() if k != "site.data_dir"
               and not any(k == r or k.startswith((r + ".", r + "[")) for r in replaced)}
    entries.update({k: {"value": masked(k, v), "explicit": True, "source": "file"} for k, v in flat.items()})
    return dict(sorted(entries.items()))
