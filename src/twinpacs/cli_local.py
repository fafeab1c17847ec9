"""What every command that reads a site's own index (no running site needed) shares."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .config import Settings, load_settings
from .core.principal import Principal
from .errors import NotFound
from .index.sql import SqlIndex


@contextmanager
def existing_index(config: Path | None, data_dir: Path | None) -> Iterator[tuple[Settings, SqlIndex]]:
    """The site's settings and index, closed afterwards. NotFound when the data folder holds no
    index: a command that only reads must not create an empty one in a mistyped folder."""
    settings = load_settings(config, {"site": {"data_dir": data_dir}} if data_dir else None)
    index_file = settings.site.data_dir / "index.sqlite3"
    if not settings.database.url and not index_file.exists():
        raise NotFound(f"no twinpacs index at {index_file}: is {settings.site.data_dir} the site's data folder?")
    index = SqlIndex(settings.database_url)
    try:
        yield settings, index
    finally:
        index.close()


def operator() -> Principal:
    """Who runs a local command, as the access trail names them: the OS user."""
    return Principal(getpass.getuser(), "operator", "local")
