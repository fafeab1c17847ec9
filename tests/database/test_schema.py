"""Schema upgrades only when asked: a new database is created at head, an older one is refused
at start with the command to run, `twinpacs db upgrade` brings it to head with its data."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from twinpacs.errors import ConfigurationError
from twinpacs.index import migrate as schema_migrate
from twinpacs.index.database import Database
from twinpacs.index.sql import SqlIndex

from tests.cli_run import run_cli


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'index.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


def _at_revision(url: str, revision: str) -> None:
    """A database as an older twinpacs left it, with one patient in it."""
    db = Database(url, check_schema=False)
    try:
        with db.writer.begin() as conn:
            command.upgrade(schema_migrate._config(conn), revision)
            conn.execute(sa.text('INSERT INTO patients ("PatientID", "PatientName") VALUES (\'OLD1\', \'Old^Data\')'))
    finally:
        db.dispose()


def _revision(url: str) -> str | None:
    db = Database(url, check_schema=False)
    try:
        with db.reader.connect() as conn:
            return schema_migrate.schema_state(conn).current
    finally:
        db.dispose()


def test_a_new_database_is_created_at_head(url: str) -> None:
    SqlIndex(url).close()
    assert _revision(url) == schema_migrate.head_revision()
    SqlIndex(url).close()  # and a database at head starts


def test_an_older_database_is_refused_until_upgraded(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _at_revision(url, "0001")
    with pytest.raises(ConfigurationError) as refused:
        SqlIndex(url)
    message = refused.value.message
    assert "0001" in message and schema_migrate.head_revision() in message
    assert "twinpacs db upgrade --database-url" in message and "--config FILE" in message
    assert _revision(url) == "0001"  # the refusal changed nothing

    code, out, _ = run_cli(capsys, "db", "status", "--database-url", url)
    assert code == 1 and "0001" in out and "twinpacs db upgrade" in out

    code, out, _ = run_cli(capsys, "db", "upgrade", "--database-url", url)
    assert code == 0 and f"0001 → {schema_migrate.head_revision()}" in out
    index = SqlIndex(url)
    try:
        assert index.counts()["patients"] == 1  # the data survived the upgrade
    finally:
        index.close()
    code, out, _ = run_cli(capsys, "db", "upgrade", "--database-url", url)
    assert code == 0 and "nothing to do" in out


def test_start_refusal_exits_2_naming_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "site"
    data_dir.mkdir()
    _at_revision(f"sqlite:///{data_dir / 'index.sqlite3'}", "0001")
    code, _, err = run_cli(capsys, "figures", "--data-dir", str(data_dir))
    assert code == 2
    assert "twinpacs db upgrade" in err and "Traceback" not in err
    code, out, _ = run_cli(capsys, "db", "upgrade", "--data-dir", str(data_dir))
    assert code == 0 and "→" in out
    code, _, _ = run_cli(capsys, "figures", "--data-dir", str(data_dir))
    assert code == 0


def test_a_newer_database_is_refused(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    SqlIndex(url).close()
    db = Database(url, check_schema=False)
    with db.writer.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    db.dispose()
    with pytest.raises(ConfigurationError, match="9999.*newer twinpacs"):
        SqlIndex(url)
    code, _, err = run_cli(capsys, "db", "upgrade", "--database-url", url)
    assert code == 2 and "9999" in err


def test_tables_without_a_revision_are_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE something (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(ConfigurationError, match="not created by twinpacs"):
        SqlIndex(url)


def test_status_of_a_missing_sqlite_file_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "db", "status", "--data-dir", str(tmp_path / "nowhere"))
    assert code == 2 and "does not exist" in err
    assert not (tmp_path / "nowhere").exists()


def test_simultaneous_first_starts_create_the_schema_once(url: str) -> None:
    """Two nodes starting on one new database: one creates it, the other finds it at head."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        indexes = list(pool.map(lambda _: SqlIndex(url), range(4)))
    for index in indexes:
        index.close()
    assert _revision(url) == schema_migrate.head_revision()
