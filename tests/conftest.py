"""Fixtures shared by every suite: index backends (the contract runs on each) and archives."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from twinpacs.app import Site
from twinpacs.core.archive import Archive
from twinpacs.index.sql import SqlIndex
from twinpacs.storage.filesystem import FilesystemBlobStore
from twinpacs.web import create_app

POSTGRES_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A private schema in the machine's PostgreSQL, dropped afterwards."""
    schema = f"tp_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_SERVER)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_SERVER}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
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
