"""Fixtures shared by every suite: index backends (the contract runs on each) and archives.
The backend of every other site comes from TWINPACS_TEST_BACKEND (tests/backend.py)."""

from __future__ import annotations

import os

# A fresh site refuses unknown calling AEs (issue 9); the suites written before that open the
# DICOM door here, before twinpacs is imported. Tests of the secure default delenv it.
os.environ.setdefault("TWINPACS_DICOM__ACCEPT_UNKNOWN_AE", "true")
# Likewise the HTTP door: anonymous requests act as administrator in the suites written before
# accounts and roles existed. tests/security delenvs it to test the secure default.
os.environ.setdefault("TWINPACS_SECURITY__ANONYMOUS_ROLE", "administrator")

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from twinpacs.app import Site
from twinpacs.core.archive import Archive
from twinpacs.index.sql import SqlIndex
from twinpacs.storage.filesystem import FilesystemBlobStore
from twinpacs.web import create_app
from tests.backend import ON_POSTGRESQL, create_schema, drop_created_schemas, drop_schema, schema_url


@pytest.fixture(scope="session", autouse=True)
def backend_schemas() -> Iterator[None]:
    """The PostgreSQL schemas of the session's sites (and stale ones of killed runs) go at its end."""
    yield
    drop_created_schemas()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A private schema in the machine's PostgreSQL, dropped afterwards."""
    schema = create_schema()
    try:
        yield schema_url(schema)
    finally:
        drop_schema(schema)


# The index contract runs on both engines in the default pass; the PostgreSQL pass has run
# every suite on PostgreSQL already, so it does not repeat the SQLite half.
@pytest.fixture(params=["postgresql"] if ON_POSTGRESQL else ["sqlite", "postgresql"])
def index_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'index.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def index(index_url: str) -> Iterator[SqlIndex]:
    idx = SqlIndex(index_url)
    yield idx
    idx.close()


@pytest.fixture
def archive(index: SqlIndex, tmp_path: Path) -> Archive:
    return Archive(FilesystemBlobStore(tmp_path / "store"), index)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(site: Site) -> AsyncIterator[httpx.AsyncClient]:
    """The app of the suite's `site` fixture, in process over httpx's ASGI transport."""
    transport = httpx.ASGITransport(app=create_app(site))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as test_client:
        yield test_client


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "objects").rglob("*") if p.is_file())
