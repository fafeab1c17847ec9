"""Two sites in this process, each served over real HTTP on a loopback port of its own."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from twinpacs.app import Site, build_site
from twinpacs.config import load_settings
from twinpacs.synthetic import StudySpec, encode, make_study
from tests.backend import backend_url
from tests.served import ServedApp

SHARED = [StudySpec(patient_id=f"AUD{k}", patient_name=f"Audit^Pat{k}", study_date=f"2026110{k}",
                    accession_number=f"ACC-AUD{k}", series=2, instances_per_series=2, rows=16, columns=16, seed=40 + k)
          for k in range(1, 4)]


@dataclass
class ServedSite:
    site: Site
    url: str

    def sql(self, statement: str, **params: str) -> None:
        """Change the index behind twinpacs's back (a connection of its own), as a careless
        script or a disk fault would. Mixed-case columns are quoted: PostgreSQL folds others."""
        engine = sa.create_engine(self.site.settings.database_url, poolclass=sa.NullPool)
        try:
            with engine.begin() as conn:
                assert conn.execute(sa.text(statement), params).rowcount == 1
        finally:
            engine.dispose()

    def store(self, *specs: StudySpec) -> list[bytes]:
        objects = [encode(ds) for spec in specs for ds in make_study(spec)]
        for data in objects:
            self.site.archive.store(data)
        return objects


def _serve(site: Site) -> Iterator[str]:
    served = ServedApp(site)
    try:
        yield served.url
    finally:
        served.stop()


def _served(tmp_path: Path, name: str) -> Iterator[ServedSite]:
    site = build_site(load_settings(overrides={"site": {"data_dir": tmp_path / name, "name": name},
                                               "database": {"url": backend_url(tmp_path / name)}}))
    try:
        for url in _serve(site):
            yield ServedSite(site, url)
    finally:
        site.close()


@pytest.fixture
def site_a(tmp_path: Path) -> Iterator[ServedSite]:
    yield from _served(tmp_path, "A")


@pytest.fixture
def site_b(tmp_path: Path) -> Iterator[ServedSite]:
    yield from _served(tmp_path, "B")


@pytest.fixture
def twins(site_a: ServedSite, site_b: ServedSite) -> tuple[ServedSite, ServedSite]:
    """A and B holding the same three studies."""
    site_a.store(*SHARED)
    site_b.store(*SHARED)
    return site_a, site_b
