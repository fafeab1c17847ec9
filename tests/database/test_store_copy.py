"""`twinpacs migrate --storage-path`: object files copied to a new data folder, each verified
by SHA-256, resumable, rate-limited; the site then serves the same bytes from there."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from twinpacs.index.store_copy import copy_store, count_objects, object_files, verify_store

from tests.cli_run import run_cli

from .conftest import Populated, open_site


def test_migrate_with_a_new_storage_path(sqlite_site: Populated, postgres_url: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    new = tmp_path / "new-data"
    code, out, err = run_cli(capsys, "migrate", "--data-dir", str(sqlite_site.data_dir), "--to", postgres_url,
                             "--storage-path", str(new))
    assert code == 0, err
    assert "19 copied" in out and f'data_dir = "{new}"' in out
    assert verify_store(sqlite_site.data_dir / "store", new / "store") == []
    site = open_site(new, postgres_url)
    try:
        for uid, data in sqlite_site.objects.items():
            [item] = site.archive.instances(sop=uid)
            assert site.archive.read(item) == data
            assert site.archive.path(item) is not None and str(site.archive.path(item)).startswith(str(new))
    finally:
        site.close()


def test_an_interrupted_file_copy_resumes_and_redoes_a_bad_file(sqlite_site: Populated, tmp_path: Path) -> None:
    source, target = sqlite_site.data_dir / "store", tmp_path / "new" / "store"
    first = copy_store(source, target, stop_after=7)
    assert (first.copied, first.skipped) == (7, 0)
    # A file damaged at the target after it was copied is copied again, not trusted.
    damaged = target / next(object_files(source)).relative_to(source)
    damaged.write_bytes(b"not the object")
    second = copy_store(source, target)
    assert (second.files, second.copied, second.skipped) == (19, 13, 6)
    assert verify_store(source, target) == []
    assert not any((target / "tmp").iterdir())  # nothing partial left behind
    third = copy_store(source, target)
    assert (third.copied, third.skipped) == (0, 19)


def test_the_copy_keeps_to_the_rate(sqlite_site: Populated, tmp_path: Path) -> None:
    files, _ = count_objects(sqlite_site.data_dir / "store")
    started = time.monotonic()
    result = copy_store(sqlite_site.data_dir / "store", tmp_path / "new" / "store", max_rate=40)
    assert result.copied == files == 19
    assert time.monotonic() - started >= (files - 1) / 40


def test_storage_path_needs_the_data_folder(sqlite_site: Populated, postgres_url: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "migrate", "--database-url", sqlite_site.url, "--to", postgres_url,
                           "--storage-path", str(tmp_path / "new"))
    assert code == 2 and "--config or --data-dir" in err
