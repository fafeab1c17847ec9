"""`twinpacs db status|upgrade|check` and `twinpacs migrate` (copy the index to another
database, verified). The work is in index/migrate, index/health and index/transfer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .errors import ConfigurationError, TwinpacsError

if TYPE_CHECKING:
    from .index.database import Database

app = typer.Typer(help="The index database: schema upgrades and checks.", no_args_is_help=True)
out = Console(width=None if Console().is_terminal else 160)
err = Console(stderr=True, soft_wrap=True)

ConfigOption = Annotated[Optional[Path], typer.Option("--config", "-c", help="TOML configuration of the site.")]
DataDirOption = Annotated[Optional[Path], typer.Option(
    "--data-dir", help="The site's data folder; its index is DIR/index.sqlite3 unless --database-url is given.")]
UrlOption = Annotated[Optional[str], typer.Option(
    "--database-url", help="SQLAlchemy URL of the index (overrides the configuration).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@dataclass(frozen=True)
class Target:
    url: str
    data_dir: Path | None
    how: str  # the options that named it, repeated in advice


def _database(config: Path | None, data_dir: Path | None, url: str | None) -> Target:
    """The index the options name: --database-url, else the configuration's, else DIR's SQLite file."""
    if config is not None:
        from .config import load_settings

        settings = load_settings(config)
        folder = data_dir or settings.site.data_dir
        chosen = url or settings.database.url or f"sqlite:///{folder / 'index.sqlite3'}"
        return Target(chosen, folder, f"--config {config}" + (f" --database-url '{url}'" if url else ""))
    if url:
        return Target(url, data_dir, f"--database-url '{url}'")
    if data_dir is not None:
        return Target(f"sqlite:///{data_dir.resolve() / 'index.sqlite3'}", data_dir, f"--data-dir {data_dir}")
    raise ConfigurationError("say which index: --config FILE, --data-dir DIR or --database-url URL")


@app.command()
def status(config: ConfigOption = None, data_dir: DataDirOption = None, database_url: UrlOption = None,
           as_json: JsonOption = False) -> None:
    """The database's schema revision next to the one this version expects. Exit 1 if they differ."""
    from .index.database import Database
    from .index.migrate import masked_url, schema_state

    target = _database(config, data_dir, database_url)
    _must_exist(target.url)
    db = Database(target.url, check_schema=False)
    try:
        with _reachable(target.url), db.reader.connect() as conn:
            state = schema_state(conn)
    finally:
        db.dispose()
    data = {"database": masked_url(target.url), "current": state.current, "head": state.head,
            "empty": state.empty, "at_head": state.at_head}
    if as_json:
        out.print_json(json.dumps(data))
    else:
        out.print(f"database  {data['database']}\ncurrent   {state.current or '(none)'}\nexpected  {state.head}",
                  highlight=False)
        if state.at_head:
            out.print("up to date", style="bold green")
        elif state.empty:
            out.print("empty: created at first start")
        else:
            out.print(f"behind: run twinpacs db upgrade {target.how}", style="bold red", highlight=False)
    raise typer.Exit(0 if state.at_head or state.empty else 1)


@app.command("upgrade")
def upgrade_cmd(config: ConfigOption = None, data_dir: DataDirOption = None, database_url: UrlOption = None) -> None:
    """Apply the schema migrations this version brings (back the database up first)."""
    from .index.database import Database
    from .index.migrate import masked_url, upgrade

    target = _database(config, data_dir, database_url)
    db = Database(target.url, check_schema=False)
    try:
        with _reachable(target.url):
            before, after = upgrade(db.writer)
    finally:
        db.dispose()
    if before == after:
        out.print(f"{masked_url(target.url)}: already at {after}; nothing to do", highlight=False)
    else:
        out.print(f"{masked_url(target.url)}: upgraded {before or '(new database)'} → {after}", highlight=False)


@app.command()
def check(config: ConfigOption = None, data_dir: DataDirOption = None, database_url: UrlOption = None,
          as_json: JsonOption = False) -> None:
    """Engine and version, WAL, schema revision, indexes present and used by the hot-path
    queries (EXPLAIN), statistics on PostgreSQL. Exit 1 on any error."""
    from .index.health import check_database, findings_json, has_errors

    findings = check_database(_database(config, data_dir, database_url).url)
    if as_json:
        out.print_json(findings_json(findings))
    else:
        table = Table("level", "check", "detail")
        colour = {"ok": "green", "warning": "yellow", "error": "red"}
        for f in findings:
            table.add_row(f"[{colour[f.level]}]{f.level}[/]", f.check, f.detail)
        out.print(table)
    raise typer.Exit(1 if has_errors(findings) else 0)


def _must_exist(url: str) -> None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        raise ConfigurationError(f"{parsed.database} does not exist")


@contextmanager
def _reachable(url: str) -> Iterator[None]:
    """A database that cannot be reached is a one-line error, not a traceback."""
    from sqlalchemy.exc import OperationalError

    from .index.migrate import masked_url

    try:
        yield
    except OperationalError as exc:
        raise TwinpacsError(f"cannot use the database {masked_url(url)}: {exc.orig}") from None


@contextmanager
def _bars(enabled: bool) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    with Progress(TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err, transient=False) as progress:
        yield progress


class _TableBars:
    """One bar per table (rows), created when the copy reaches it."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress, self.tasks = progress, {}  # type: ignore[var-annotated]

    def __call__(self, table: str, done: int, total: int) -> None:
        if self.progress is None:
            return
        if table not in self.tasks:
            self.tasks[table] = self.progress.add_task(table, total=total)
        self.progress.update(self.tasks[table], completed=done, total=max(total, done))


def migrate(
    to: Annotated[str, typer.Option("--to", help="SQLAlchemy URL of the new index (created or upgraded first).")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: Annotated[Optional[str], typer.Option(
        "--database-url", help="The current index (default: from --config, else DIR/index.sqlite3).")] = None,
    batch_size: Annotated[int, typer.Option(help="Rows per target transaction.", min=1)] = 1000,
    force: Annotated[bool, typer.Option(help="Erase the target's twinpacs tables first and copy from the start "
                                                  "(a target holding other data, or a source that changed since).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count rows and objects, estimate the time; copy nothing.")] = False,
    storage_path: Annotated[Optional[Path], typer.Option(
        help="Also copy the object files to this new data folder (NEW/store), each verified by SHA-256.")] = None,
    max_rate: Annotated[Optional[float], typer.Option(help="With --storage-path: at most this many objects per second.", min=0.001)] = None,
    as_json: JsonOption = False,
) -> None:
    """Copy the index to another database (SQLite ↔ PostgreSQL), resumable, then verify counts
    and digests per table. Stop the site first. Exit 1 unless every check matches."""
    from .index import transfer
    from .index.migrate import masked_url

    current = _database(config, data_dir, database_url)
    if transfer.source_identity(current.url) == transfer.source_identity(to):
        raise ConfigurationError("--to names the current index")
    source_store = current.data_dir / "store" if current.data_dir else None
    if storage_path is not None and source_store is None:
        raise ConfigurationError("--storage-path needs the site's data folder: give --config or --data-dir")
    with _reachable(current.url):
        source = transfer.open_source(current.url)
    try:
        if dry_run:
            _dry_run(source, batch_size, source_store if storage_path else None, as_json)
            return
        with _reachable(to):
            report = _copy_and_verify(source, to, batch_size, force, not as_json)
        if report["verified"] and storage_path is not None and source_store is not None:
            report["store"] = _copy_files(source_store, storage_path, max_rate, not as_json)
    except KeyboardInterrupt:
        raise TwinpacsError("interrupted: what was copied is kept; run the same command again "
                            "to resume where it stopped") from None
    finally:
        source.dispose()
    report["configuration"] = {"database.url": masked_url(to)}
    if storage_path is not None:
        report["configuration"]["site.data_dir"] = str(storage_path)
    _print_report(report, as_json)


def _copy_files(source_store: Path, storage_path: Path, max_rate: float | None, bars: bool) -> dict[str, Any]:
    from .index.store_copy import copy_store

    with _bars(bars) as progress:
        task = progress.add_task("object files", total=None) if progress else None

        def advance(done: int, total: int) -> None:
            if progress is not None and task is not None:
                progress.update(task, completed=done, total=total)

        files = copy_store(source_store, storage_path / "store", max_rate, advance)
    return {"files": files.files, "copied": files.copied, "skipped_verified": files.skipped,
            "bytes_copied": files.bytes_copied, "seconds": round(files.seconds, 2)}


def _print_report(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(report))
        if not report["verified"]:
            raise typer.Exit(1)
        return
    if not report["verified"]:
        err.print(f"[red]verification failed:[/red] {', '.join(report['differing'])} differ between the two "
                  "databases. The old index is unchanged; keep using it. If the site ran since the copy "
                  "started, stop it and run again with --force to copy from the start.",
                  highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    out.print(f"[bold green]verified[/]: {report['rows']} rows in {len(report['tables'])} tables, "
              f"{report['instances']} instances by (SOPInstanceUID, content_hash); "
              f"{report['rows_copied_this_run']} rows copied in this run", highlight=False)
    if "store" in report:
        store = report["store"]
        out.print(f"object files: {store['copied']} copied, {store['skipped_verified']} already there, "
                  "all verified by SHA-256", highlight=False)
    out.print("Now change the configuration, then start the site:", highlight=False)
    for key, value in report["configuration"].items():
        section, _, name = key.partition(".")
        out.print(f"  [{section}] {name} = \"{value}\"" + ("  (add the password)" if "***" in value else ""),
                  highlight=False, markup=False)


def _copy_and_verify(source: Database, to: str, batch_size: int, force: bool, bars: bool) -> dict[str, Any]:
    from .index import transfer

    target, before = transfer.open_target(to)
    try:
        transfer.check_target(target, transfer.source_identity(str(source.url)), force)
        with _bars(bars) as progress:
            copy = transfer.copy_index(source, target, batch_size, _TableBars(progress))
        started = time.monotonic()
        with _bars(bars) as progress:
            check = transfer.verify(source, target, _TableBars(progress))
        verify_s = time.monotonic() - started
    finally:
        target.dispose()
    rows = sum(t.source_rows for t in check.tables)
    return {
        "verified": check.ok, "differing": check.differing, "rows": rows, "instances": check.instance_count,
        "target_revision_before": before, "rows_copied_this_run": copy.rows_this_run,
        "copy_seconds": round(copy.seconds, 2), "verify_seconds": round(verify_s, 2),
        "rows_per_second": round(copy.rows_this_run / copy.seconds) if copy.rows_this_run else None,
        "tables": [{"table": t.table, "source_rows": t.source_rows, "target_rows": t.target_rows,
                    "digest_equal": t.source_digest == t.target_digest} for t in check.tables],
    }


def _dry_run(source: Database, batch_size: int, store: Path | None, as_json: bool) -> None:
    from .index import transfer
    from .index.store_copy import count_objects

    guess = transfer.estimate(source, batch_size)
    data: dict[str, Any] = {"rows": guess.rows, "total_rows": guess.total, "estimated_seconds": round(guess.seconds, 1)}
    if store is not None:
        files, size = count_objects(store)
        data["object_files"], data["object_bytes"] = files, size
    if as_json:
        out.print_json(json.dumps(data))
        return
    table = Table("table", "rows", title="dry run: nothing copied")
    for name, count in guess.rows.items():
        table.add_row(name, str(count))
    out.print(table)
    out.print(f"{guess.total} rows; estimated {guess.seconds:.0f} s to copy and verify", highlight=False)
    if store is not None:
        out.print(f"{data['object_files']} object files, {data['object_bytes']} bytes to copy and verify",
                  highlight=False)

