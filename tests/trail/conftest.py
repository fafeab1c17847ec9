"""A site in this process (on the run's backend), its app over httpx, and trail helpers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from twinpacs.app import Site, build_site
from twinpacs.config import load_settings
from twinpacs.core.access_trail import TrailFilter, TrailRecord
from twinpacs.synthetic import StudySpec, encode, make_study
from tests.backend import backend_url

SPEC = StudySpec(patient_id="TRAIL01", patient_name="Trail^Tess", series=1, instances_per_series=2,
                 rows=16, columns=16, accession_number="ACC-TRAIL", seed=11)


def make_site(data_dir: Path, **sections: Any) -> Site:
    return build_site(load_settings(overrides={"site": {"data_dir": data_dir, "name": "trail-test"},
                                               "database": {"url": backend_url(data_dir)}, **sections}))


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    built = make_site(tmp_path / "site")
    yield built
    built.close()


@pytest.fixture
def study_uid(site: Site) -> str:
    """One small study stored straight into the archive (no trail entry: not through a door)."""
    datasets = make_study(SPEC)
    for ds in datasets:
        site.archive.store(encode(ds), source="TEST")
    return str(datasets[0].StudyInstanceUID)


def entries(site: Site, **wanted: Any) -> list[TrailRecord]:
    """The site's trail, oldest first (what was queued is committed first)."""
    return list(reversed(site.access_trail.entries(TrailFilter(**wanted))))
