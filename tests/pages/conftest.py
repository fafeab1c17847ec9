"""The page tests' sites: the module's two-site world (tests/pages/world.py), and for a test
of its own, more sites built in its folder (closed at its end)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.replication.conftest import Sites
from tests.pages.world import World, build_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = build_world(tmp_path_factory.mktemp("world"))
    yield built
    built.close()


@pytest.fixture
def more_sites(tmp_path: Path) -> Iterator[Sites]:
    made = Sites(tmp_path)
    yield made
    made.close()


_ROW = re.compile(r'<tr class="row-[^"]*" data-status="([^"]*)" data-accession="([^"]*)">(.*?)</tr>', re.S)


def worklist_rows(html: str) -> list[tuple[str, str, str]]:
    """(status, accession, the row's HTML) of each worklist row, in page order."""
    return _ROW.findall(html)
