from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.live import LiveSite, free_port

if shutil.which("storescu") is None:
    pytest.exit("DCMTK is not installed: run scripts/setup.sh (make test does)", returncode=3)


@pytest.fixture
def move_port() -> int:
    return free_port()


@pytest.fixture
def site(tmp_path: Path, move_port: int) -> Iterator[LiveSite]:
    live = LiveSite(tmp_path / "site", "TWINPACS", ("--move-destination", f"STORESCP=127.0.0.1:{move_port}"))
    live.start()
    yield live
    live.kill()
