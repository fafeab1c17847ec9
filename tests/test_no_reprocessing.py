"""A changed setting never rewrites or re-processes stored objects (issue 5: another archive
rewrote every file for weeks after it believed a storage setting had changed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.backend import backend_url
from twinpacs.app import build_site
from twinpacs.config import load_settings
from twinpacs.index.schema import changes, outbox
from twinpacs.synthetic import StudySpec, encode, make_study


def _files(store: Path) -> dict[str, tuple[int, int, int]]:
    """Every stored file with (inode, size, mtime in ns): a rewrite changes at least one."""
    return {str(p.relative_to(store)): (s.st_ino, s.st_size, s.st_mtime_ns)
            for p in sorted(store.rglob("*")) if p.is_file() for s in [os.stat(p)]}


def _rows(url: str) -> tuple[int, int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        counts = (conn.execute(sa.select(sa.func.count()).select_from(changes)).scalar_one(),
                  conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one())
    engine.dispose()
    return counts


def test_restart_with_changed_settings_touches_no_stored_object(tmp_path: Path) -> None:
    data_dir = tmp_path / "site"
    database = {"url": backend_url(data_dir)}
    first: dict[str, Any] = {"site": {"data_dir": data_dir, "name": "A", "ae_title": "OLDAE"},
                             "database": database, "storage": {"conflict_policy": "keep-first"}}
    site = build_site(load_settings(overrides=first))
    for ds in make_study(StudySpec(patient_id="RP1", series=2, instances_per_series=3, rows=16, columns=16, seed=5)):
        site.archive.store(encode(ds))
    before_files = _files(data_dir / "store")
    before_figures = site.archive.figures()
    url = site.settings.database_url
    before_rows = _rows(url)
    site.close()

    # Every kind of setting changes: identity, doors, the storage policy, a new peer, replication.
    changed: dict[str, Any] = {
        "site": {"data_dir": data_dir, "name": "A", "ae_title": "NEWAE", "role": "standby"},
        "database": database,
        "dicom": {"port": 104, "max_associations": 4},
        "http": {"port": 8443},
        "storage": {"conflict_policy": "newer-wins"},
        "peers": [{"name": "B", "dicomweb_url": "http://127.0.0.1:9/dicom-web"}],
        "replication": {"batch_size": 7},
    }
    site = build_site(load_settings(overrides=changed))
    try:
        assert _files(data_dir / "store") == before_files
        after = site.archive.figures()
        assert after["bytes_written"] == before_figures["bytes_written"]
        assert after["instances"] == before_figures["instances"] == 6
        # Nothing was re-queued or re-logged: a new peer receives only what is stored from now on
        # (existing objects are an explicit, audited repair: `twinpacs audit --repair`).
        assert _rows(url) == before_rows
    finally:
        site.close()
