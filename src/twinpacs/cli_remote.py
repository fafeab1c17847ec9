"""What every command that acts on a running site shares: its URL, the HTTP call, errors."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated, Any, Optional

import httpx
import typer
from rich.console import Console

UrlOption = Annotated[Optional[str], typer.Option("--url", help="The site's HTTP address (default: from --config, else http://127.0.0.1:8080).")]
ConfigOption = Annotated[Optional[Path], typer.Option("--config", "-c", help="TOML configuration of the site.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

err = Console(stderr=True, soft_wrap=True)

_token: str | None = None  # from `twinpacs --token` or TWINPACS_TOKEN (cli.py), for this process


def use_token(token: str | None) -> None:
    global _token
    _token = token.strip() if token else None


def auth_headers() -> dict[str, str]:
    """Authorization for a site's API, when a token was given."""
    return {"Authorization": f"Bearer {_token}"} if _token else {}


def site_url(url: str | None, config: Path | None) -> str:
    if url:
        return url.rstrip("/")
    if config is not None:
        from .config import load_settings

        http = load_settings(config).http
        host = "127.0.0.1" if http.bind in ("0.0.0.0", "::") else http.bind
        return f"http://{host}:{http.port}"
    return "http://127.0.0.1:8080"


def call(method: str, url: str, timeout: float = 30.0, **kwargs: Any) -> Any:
    """One request to a site; a clear message and exit code 1 instead of a traceback."""
    try:
        headers = {**auth_headers(), **kwargs.pop("headers", {})}
        response = httpx.request(method, url, timeout=timeout, headers=headers, **kwargs)
    except httpx.HTTPError as exc:
        err.print(f"[red]error:[/red] cannot reach {url}: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text[:500], "status": response.status_code}
    if response.status_code >= 400:
        message = body.get("error", body) if isinstance(body, dict) else body
        if response.status_code == 401:
            message = f"{message} (give a token: --token TOKEN or TWINPACS_TOKEN, from `twinpacs user token NAME`)"
        err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    return body


def operator_name() -> str:
    """Who is acting, for the operator log: the login name where there is one."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment or the password database
        return "unknown"
