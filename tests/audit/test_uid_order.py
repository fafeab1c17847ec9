"""Audit digests are the same on SQLite and on a PostgreSQL whose locale sorts UIDs
differently (glibc's en_US ignores the dots: "12.2" before "1.23")."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from twinpacs.app import Site, build_site
from twinpacs.config import load_settings
from twinpacs.core.audit import AuditLevel
from twinpacs.index.digest import IndexDigestSource, listing
from twinpacs.index.schema import series
from twinpacs.synthetic import StudySpec, encode, make_study

# Byte order: "1.23.1" < "12.2.1"; with dots ignored: "1221" < "1231".
UIDS = ["1.23.1", "12.2.1", "1.3.5", "13.4", "1.1.9.9"]


def _site(data_dir: Path, url: str) -> Site:
    return build_site(load_settings(overrides={"site": {"data_dir": data_dir, "name": "A"}, "database": {"url": url}}))


def _fill(site: Site) -> None:
    for ds, uid in zip(make_study(StudySpec(patient_id="ORD1", series=1, instances_per_series=len(UIDS),
                                            rows=8, columns=8, seed=3)), UIDS):
        ds.SOPInstanceUID = uid
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        site.archive.store(encode(ds))


def test_digests_agree_across_engines_whatever_the_collation(tmp_path: Path, postgres_url: str) -> None:
    schema = postgres_url.split("search_path%3D")[1].split("%20")[0].split("&")[0]
    lite = _site(tmp_path / "lite", f"sqlite:///{tmp_path / 'lite.sqlite3'}")
    pg = _site(tmp_path / "pg", postgres_url)
    try:
        with pg.index.db.writer.begin() as conn:  # what an en_US.UTF-8 database does to the column
            conn.execute(sa.text(f'CREATE COLLATION "{schema}".dots_ignored '
                                 "(provider = icu, locale = 'en-US-u-ka-shifted')"))
            conn.execute(sa.text(f'ALTER TABLE instances ALTER COLUMN "SOPInstanceUID" '
                                 f'TYPE varchar(64) COLLATE "{schema}".dots_ignored'))
        _fill(lite)
        _fill(pg)
        with pg.index.db.read() as conn:
            locale_order = [r[0] for r in conn.execute(sa.text('SELECT "SOPInstanceUID" FROM instances '
                                                               'ORDER BY "SOPInstanceUID"'))]
        assert locale_order != sorted(UIDS)  # the column really sorts differently

        a, b = IndexDigestSource(lite.index.db, "lite"), IndexDigestSource(pg.index.db, "pg")
        assert a.top() == b.top()
        with lite.index.db.read() as conn:
            series_uid = conn.execute(sa.select(series.c.SeriesInstanceUID)).scalar_one()
        for level, parent in ((AuditLevel.PATIENT, ""), (AuditLevel.INSTANCE, series_uid)):
            assert a.children(level, parent) == b.children(level, parent)
        assert [e.SOPInstanceUID for e in listing(pg.index.db)] == sorted(UIDS)
    finally:
        lite.close()
        pg.close()

