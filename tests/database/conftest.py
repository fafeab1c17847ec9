"""A populated site to migrate, and the command line run in process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from twinpacs.app import Site, build_site
from twinpacs.config import load_settings
from twinpacs.synthetic import StudySpec, encode, make_studies, make_study
from tests.backend import ON_POSTGRESQL

# These tests name their engines themselves (SQLite and PostgreSQL, both ways): the suite's
# PostgreSQL pass would only run them a second time.
collect_ignore_glob = ["test_*.py"] if ON_POSTGRESQL else []


def open_site(data_dir: Path, url: str, name: str = "A") -> Site:
    return build_site(load_settings(overrides={
        "site": {"data_dir": str(data_dir), "name": name},
        "database": {"url": url},
        # A peer that is never contacted: stores queue outbox rows, so that table is copied too.
        "peers": [{"name": "B", "api_url": "http://127.0.0.1:9"}],
    }))


@dataclass
class Populated:
    data_dir: Path
    url: str
    objects: dict[str, bytes]  # SOPInstanceUID -> the bytes stored last


def populate(data_dir: Path, url: str, studies: int = 3) -> Populated:
    site = open_site(data_dir, url)
    objects: dict[str, bytes] = {}
    try:
        base = StudySpec(series=2, instances_per_series=3, rows=8, columns=8)
        for spec in make_studies(studies, base):
            for ds in make_study(spec):
                data = encode(ds)
                site.archive.store(data, source="test")
                objects[str(ds.SOPInstanceUID)] = data
        # A second version of one instance: a conflict (instance_versions) with the first kept.
        changed = make_study(StudySpec(series=1, instances_per_series=1, rows=8, columns=8,
                                       patient_id=f"{base.patient_id}-00000", patient_name="Other^Name",
                                       accession_number="ACC00000000"))[0]
        site.archive.store(encode(changed), source="test")
    finally:
        site.close()
    return Populated(data_dir, url, objects)


@pytest.fixture
def sqlite_site(tmp_path: Path) -> Populated:
    folder = tmp_path / "site"
    return populate(folder, f"sqlite:///{folder / 'index.sqlite3'}")
