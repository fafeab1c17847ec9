"""`twinpacs user add|password|token|tokens|revoke-token|list|disable|enable`: the accounts of the HTTP door, kept in the site's index
(core/accounts.py). Run on the site's machine with its configuration, like `twinpacs db`."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from .config import load_settings
from .core.accounts import ROLES, Accounts, check_role
from .core.archive import utcnow
from .errors import InvalidInput
from .index.accounts import SqlAccountStore
from .index.database import Database

app = typer.Typer(help="Accounts and API tokens of the HTTP door (pages, API, DICOMweb).", no_args_is_help=True)
out = Console()
err = Console(stderr=True, soft_wrap=True)

ConfigOption = Annotated[Optional[Path], typer.Option("--config", "-c", help="TOML configuration of the site.")]
DataDirOption = Annotated[Optional[Path], typer.Option("--data-dir", help="Folder of the site's data.")]
UrlOption = Annotated[Optional[str], typer.Option("--database-url", help="SQLAlchemy URL of the index.")]
NameArgument = Annotated[str, typer.Argument(help="The user name.")]


def _accounts(config: Path | None, data_dir: Path | None, database_url: str | None) -> tuple[Accounts, Database]:
    overrides: dict[str, dict[str, object]] = {}
    if data_dir is not None:
        overrides["site"] = {"data_dir": data_dir}
    if database_url is not None:
        overrides["database"] = {"url": database_url}
    settings = load_settings(config, overrides)
    db = Database(settings.database_url)
    return Accounts(SqlAccountStore(db), utcnow), db


@contextmanager
def _accounts_of(config: Path | None, data_dir: Path | None, database_url: str | None) -> Iterator[Accounts]:
    """The site's accounts for one command; a refusal is its error message and exit code 1."""
    accounts, db = _accounts(config, data_dir, database_url)
    try:
        yield accounts
    except InvalidInput as exc:
        _fail(exc.message)
    finally:
        db.dispose()


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    raise typer.Exit(code)


def _password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        _fail("the two passwords differ")
    return first


@app.command()
def add(
    name: NameArgument,
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from the first "
                                                 "line of standard input instead of asking.")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: UrlOption = None,
) -> None:
    """Add a user who signs in to the pages with a password."""
    try:
        check_role(role)
    except InvalidInput as exc:
        _fail(exc.message, 2)
    with _accounts_of(config, data_dir, database_url) as accounts:
        accounts.add(name, role, _password(password_stdin))
    out.print(f"user {name} added ({role})", highlight=False)


@app.command()
def password(
    name: NameArgument,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the new password from the "
                                                 "first line of standard input instead of asking.")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: UrlOption = None,
) -> None:
    """Set a user's password; the user's open sessions end."""
    with _accounts_of(config, data_dir, database_url) as accounts:
        accounts.set_password(name, _password(password_stdin))
    out.print(f"password of {name} changed: its sessions ended", highlight=False)


@app.command()
def token(name: NameArgument, config: ConfigOption = None, data_dir: DataDirOption = None,
          database_url: UrlOption = None) -> None:
    """Make a new API token for a user and print it, this once: only its hash is kept.
    Use it as `Authorization: Bearer TOKEN` (or TWINPACS_TOKEN for the twinpacs commands)."""
    with _accounts_of(config, data_dir, database_url) as accounts:
        secret = accounts.new_token(name)
    print(secret)  # plain print: the token alone on stdout, for scripts


@app.command()
def tokens(name: NameArgument, config: ConfigOption = None, data_dir: DataDirOption = None,
           database_url: UrlOption = None,
           as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False) -> None:
    """The user's API tokens by number and creation time (the tokens themselves are not kept)."""
    with _accounts_of(config, data_dir, database_url) as accounts:
        found = accounts.tokens(name)
    if as_json:
        out.print_json(json.dumps([{"id": t.id, "created_at": t.created_at.isoformat()} for t in found]))
        return
    table = Table("number", "created (UTC)", title=f"{len(found)} token(s) of {name}")
    for t in found:
        table.add_row(str(t.id), t.created_at.strftime("%Y-%m-%d %H:%M"))
    out.print(table)


@app.command("revoke-token")
def revoke_token(
    name: NameArgument,
    number: Annotated[Optional[int], typer.Option("--id", help="The token's number (`twinpacs user tokens`).")] = None,
    every: Annotated[bool, typer.Option("--all", help="Revoke every token of the user.")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: UrlOption = None,
) -> None:
    """Revoke one API token of a user, or all of them; refused from the next request on."""
    if (number is None) == (not every):
        _fail("say which token: --id NUMBER, or --all", 2)
    with _accounts_of(config, data_dir, database_url) as accounts:
        revoked = accounts.revoke_tokens(name, number)
    out.print(f"{revoked} token(s) of {name} revoked", highlight=False)


@app.command("list")
def list_(config: ConfigOption = None, data_dir: DataDirOption = None, database_url: UrlOption = None,
          as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False) -> None:
    """Every user, with role and state."""
    with _accounts_of(config, data_dir, database_url) as accounts:
        found = accounts.list()
    if as_json:
        out.print_json(json.dumps([{"name": a.name, "role": a.role, "disabled": a.disabled,
                                    "created_at": a.created_at.isoformat()} for a in found]))
        return
    table = Table("name", "role", "state", "created", title=f"{len(found)} user(s)")
    for a in found:
        table.add_row(a.name, a.role, "disabled" if a.disabled else "enabled", a.created_at.strftime("%Y-%m-%d %H:%M"))
    out.print(table)


@app.command()
def disable(name: NameArgument, config: ConfigOption = None, data_dir: DataDirOption = None,
            database_url: UrlOption = None) -> None:
    """Refuse the user from now on: logins, open sessions and API tokens."""
    with _accounts_of(config, data_dir, database_url) as accounts:
        accounts.disable(name)
    out.print(f"user {name} disabled: its sessions ended, its tokens refused", highlight=False)


@app.command()
def enable(name: NameArgument, config: ConfigOption = None, data_dir: DataDirOption = None,
           database_url: UrlOption = None) -> None:
    """Let a disabled user in again (password and the tokens not revoked)."""
    with _accounts_of(config, data_dir, database_url) as accounts:
        accounts.enable(name)
    out.print(f"user {name} enabled", highlight=False)
