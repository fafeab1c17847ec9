"""Database checks: a healthy index has no error on either engine; a missing index is named,
and so is the full scan it causes on a hot path."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

from twinpacs.index.health import check_database, has_errors

from twinpacs.serve import report_database

from tests.cli_run import run_cli

from .conftest import open_site, populate


@pytest.fixture(params=["sqlite", "postgresql"])
def site_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    url = (f"sqlite:///{tmp_path / 'site' / 'index.sqlite3'}" if request.param == "sqlite"
           else str(request.getfixturevalue("postgres_url")))
    return populate(tmp_path / "site", url, studies=2).url


def test_a_healthy_database_has_no_error(site_url: str) -> None:
    findings = check_database(site_url)
    assert not has_errors(findings), findings
    checks = {f.check for f in findings}
    assert {"engine", "schema", "index", "query plan"} <= checks
    engine = next(f for f in findings if f.check == "engine").detail
    assert engine.startswith("SQLite 3." if site_url.startswith("sqlite") else "PostgreSQL ")
    plans = [f for f in findings if f.check == "query plan"]
    assert len(plans) == 7 and all(f.level == "ok" for f in plans)
    if site_url.startswith("sqlite"):
        assert {f.check: f.level for f in findings}["journal_mode"] == "ok"
        assert {f.check: f.level for f in findings}["synchronous"] == "ok"
    else:
        assert any(f.check == "statistics" for f in findings)


def test_a_dropped_index_is_an_error_naming_it(site_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               caplog: pytest.LogCaptureFixture) -> None:
    engine = sa.create_engine(site_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_studies_accession"))
    engine.dispose()
    findings = check_database(site_url)
    errors = [f for f in findings if f.level == "error"]
    assert any(f.check == "index" and "ix_studies_accession" in f.detail for f in errors), findings
    # With no index left for it, the accession query scans the whole studies table.
    assert any(f.check == "query plan" and "AccessionNumber" in f.detail and "studies" in f.detail
               for f in errors), findings

    code, out, _ = run_cli(capsys, "db", "check", "--database-url", site_url, "--json")
    assert code == 1
    assert any("ix_studies_accession" in f["detail"] for f in json.loads(out) if f["level"] == "error")

    # Every start says so too, in its log.
    site = open_site(tmp_path / "site", site_url)
    try:
        with caplog.at_level(logging.WARNING, logger="twinpacs"):
            report_database(site)
    finally:
        site.close()
    assert any(r.levelno == logging.ERROR and "ix_studies_accession" in r.getMessage() for r in caplog.records)


def test_db_check_exit_code_on_a_healthy_site(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    populate(tmp_path / "site", f"sqlite:///{tmp_path / 'site' / 'index.sqlite3'}", studies=1)
    code, out, _ = run_cli(capsys, "db", "check", "--data-dir", str(tmp_path / "site"))
    assert code == 0 and "SQLite" in out and "error" not in out


def test_a_missing_sqlite_file_is_not_created_by_the_check(tmp_path: Path) -> None:
    findings = check_database(f"sqlite:///{tmp_path / 'new' / 'index.sqlite3'}")
    assert [f.level for f in findings] == ["ok"] and "first start" in findings[0].detail
    assert not (tmp_path / "new").exists()


def test_statistics_missing_on_postgresql_is_a_warning(postgres_url: str, tmp_path: Path) -> None:
    populate(tmp_path / "site", postgres_url, studies=1)
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        # A table that was never analysed: reltuples -1 (PostgreSQL 14+), no analyse time.
        conn.execute(sa.text("UPDATE pg_class SET reltuples = -1 WHERE oid = to_regclass('instances')"))
    engine.dispose()
    findings = check_database(postgres_url)
    stats = next(f for f in findings if f.check == "statistics")
    if stats.level == "ok":
        pytest.skip("autovacuum analysed the table already")
    assert stats.level == "warning" and "instances" in stats.detail and "ANALYZE" in stats.detail


def test_an_upgrade_leaves_fresh_statistics_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    from twinpacs.index import migrate as schema_migrate
    from twinpacs.index.database import Database

    db = Database(postgres_url, check_schema=False)
    try:
        with db.writer.begin() as conn:
            schema_migrate.command.upgrade(schema_migrate._config(conn), "0001")
            conn.execute(sa.text('INSERT INTO patients ("PatientID", "PatientName") VALUES (\'OLD1\', \'Old^Data\')'))
            conn.execute(sa.text("UPDATE pg_class SET reltuples = -1 WHERE oid = to_regclass('patients')"))
        before, after = schema_migrate.upgrade(db.writer)
    finally:
        db.dispose()
    assert (before, after) == ("0001", schema_migrate.head_revision())
    stats = next(f for f in check_database(postgres_url) if f.check == "statistics")
    assert stats.level == "ok", stats
