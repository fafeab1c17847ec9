"""`twinpacs migrate`: SQLite -> PostgreSQL and back, with the same query results and the same
bytes afterwards; interrupted copies resume exactly; a difference is never reported as success."""

from __future__ import annotations

import json
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from twinpacs.app import Site
from twinpacs.core.model import COMPUTED_KEYS, Level, keys_up_to
from twinpacs.core.query import build_query
from twinpacs.index import transfer
from twinpacs.synthetic import StudySpec, encode, make_study
from tests.served import ServedApp

from tests.cli_run import run_cli

from .conftest import Populated, open_site, populate

# A session time zone far from UTC: a naive timestamp written by the copy would shift and fail.
TOKYO = "%20-ctimezone%3DAsia/Tokyo"


def findings(site: Site) -> dict[Level, list[dict[str, str]]]:
    """Every level's universal query, with every key the level can return."""
    return {level: site.archive.find(build_query(level, {}, (*keys_up_to(level), *COMPUTED_KEYS[level])))
            for level in (Level.PATIENT, Level.STUDY, Level.SERIES, Level.IMAGE)}


def parts_of(response: httpx.Response) -> list[bytes]:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + response.headers["content-type"].encode() + b"\r\n\r\n" + response.content)
    return [bytes(part.get_payload(decode=True)) for part in message.iter_parts()]


def retrieved_over_http(site: Site) -> dict[str, bytes]:
    """SOPInstanceUID -> the bytes WADO-RS serves for it, fetched from a real server."""
    served = ServedApp(site)
    found: dict[str, bytes] = {}
    try:
        for row in findings(site)[Level.IMAGE]:
            url = (f"{served.url}/dicom-web/studies/{row['StudyInstanceUID']}/series/"
                   f"{row['SeriesInstanceUID']}/instances/{row['SOPInstanceUID']}")
            response = httpx.get(url, headers={"Accept": 'multipart/related; type="application/dicom"'}, timeout=30)
            assert response.status_code == 200, response.text
            [found[row["SOPInstanceUID"]]] = parts_of(response)
    finally:
        served.stop()
    return found


def snapshot(data_dir: Path, url: str) -> tuple[dict[Level, list[dict[str, str]]], dict[str, bytes]]:
    site = open_site(data_dir, url)
    try:
        return findings(site), retrieved_over_http(site)
    finally:
        site.close()


def test_sqlite_to_postgresql_serves_the_same(sqlite_site: Populated, postgres_url: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(sqlite_site.data_dir, sqlite_site.url)
    assert before[1] == sqlite_site.objects  # 18 instances (the conflicting version kept aside)

    code, out, err = run_cli(capsys, "migrate", "--data-dir", str(sqlite_site.data_dir), "--to", postgres_url + TOKYO)
    assert code == 0, err
    assert "verified" in out and "18 instances" in out and "[database] url =" in out

    after = snapshot(sqlite_site.data_dir, postgres_url)
    assert after[0] == before[0]  # patient, study, series and instance level, key by key
    assert after[1] == before[1]  # WADO-RS bytes, byte for byte

    # The sequences follow the copied ids: a new store on PostgreSQL takes the next ones.
    site = open_site(sqlite_site.data_dir, postgres_url)
    try:
        for ds in make_study(StudySpec(patient_id="NEW1", series=1, instances_per_series=2, rows=8, columns=8)):
            assert site.archive.store(encode(ds)).status.value == "stored"
        assert site.index.counts() == {"patients": 4, "studies": 4, "series": 7, "instances": 20}
        assert len(site.archive.instances(study=str(ds.StudyInstanceUID))) == 2
    finally:
        site.close()


def test_postgresql_to_sqlite_serves_the_same(tmp_path: Path, postgres_url: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    source = populate(tmp_path / "site", postgres_url + TOKYO, studies=2)
    before = snapshot(source.data_dir, postgres_url)
    target = f"sqlite:///{tmp_path / 'new.sqlite3'}"
    code, out, err = run_cli(capsys, "migrate", "--data-dir", str(source.data_dir),
                             "--database-url", postgres_url, "--to", target, "--batch-size", "7")
    assert code == 0, err
    assert "verified" in out
    after = snapshot(source.data_dir, target)
    assert after == before
    site = open_site(source.data_dir, target)
    try:
        for ds in make_study(StudySpec(patient_id="NEW2", series=1, instances_per_series=1, rows=8, columns=8)):
            assert site.archive.store(encode(ds)).status.value == "stored"
    finally:
        site.close()


def _counts(db: transfer.Database) -> dict[str, int]:
    return transfer.count_rows(db)


def test_an_interrupted_migration_resumes_exactly(sqlite_site: Populated, postgres_url: str) -> None:
    source = transfer.open_source(sqlite_site.url)
    target, _ = transfer.open_target(postgres_url)
    try:
        expected = _counts(source)
        stops = 0
        while True:  # stopped every 3 batches of 2 rows, as often as it takes
            try:
                transfer.copy_index(source, target, batch_size=2, stop_after_batches=3)
                break
            except transfer.Interrupted:
                stops += 1
                # What the target holds is exactly what its progress rows say: whole batches.
                with target.reader.connect() as conn:
                    progress = {r.table_name: r.copied for r in conn.execute(sa.select(transfer.migration_progress))}
                held = _counts(target)
                assert all(held[t] == progress.get(t, 0) for t in held), (held, progress)
        assert stops >= 10
        assert _counts(target) == expected
        assert transfer.verify(source, target).ok
    finally:
        source.dispose()
        target.dispose()


def test_a_failure_inside_a_batch_loses_nothing_and_duplicates_nothing(sqlite_site: Populated,
                                                                      postgres_url: str) -> None:
    """A crash between a batch's rows and its progress row: the transaction takes both back."""
    source = transfer.open_source(sqlite_site.url)
    target, _ = transfer.open_target(postgres_url)
    inserts = {"n": 0}

    def crash_on_the_third_instances_insert(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO instances"):
            inserts["n"] += 1
            if inserts["n"] == 3:
                raise RuntimeError("power cut")

    sa.event.listen(target.writer, "after_cursor_execute", crash_on_the_third_instances_insert)
    try:
        with pytest.raises(RuntimeError, match="power cut"):
            transfer.copy_index(source, target, batch_size=4)
        assert _counts(target)["instances"] == 8  # two whole batches, not the third's rows
        sa.event.remove(target.writer, "after_cursor_execute", crash_on_the_third_instances_insert)
        result = transfer.copy_index(source, target, batch_size=4)
        assert {t.table: t.this_run for t in result.tables}["instances"] == 10
        assert _counts(target) == _counts(source)
        assert transfer.verify(source, target).ok
    finally:
        source.dispose()
        target.dispose()


def test_a_difference_is_never_reported_as_success(sqlite_site: Populated, postgres_url: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    args = ("migrate", "--data-dir", str(sqlite_site.data_dir), "--to", postgres_url)
    assert run_cli(capsys, *args)[0] == 0
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE instances SET content_hash = 'tampered' WHERE id = 5"))
    source, target = transfer.open_source(sqlite_site.url), transfer.open_target(postgres_url)[0]
    try:
        check = transfer.verify(source, target)
        assert not check.ok
        assert check.differing == ["instances", "instances (SOPInstanceUID, content_hash)"]
    finally:
        source.dispose()
        target.dispose()
    code, out, err = run_cli(capsys, *args)  # a rerun copies nothing more and verifies again
    assert code == 1 and "verification failed" in err and "instances" in err and "verified:" not in out

    with engine.begin() as conn:  # a missing row is a count difference
        conn.execute(sa.text("UPDATE instances SET content_hash = (SELECT content_hash FROM instances WHERE id = 6) "
                             "WHERE id = 5"))
        conn.execute(sa.text("DELETE FROM outbox WHERE id = 3"))
    engine.dispose()
    code, out, _ = run_cli(capsys, *args, "--json")
    assert code == 1
    assert json.loads(out)["differing"] == ["outbox", "instances", "instances (SOPInstanceUID, content_hash)"]
    code, out, err = run_cli(capsys, *args, "--force")  # copied again from the start
    assert code == 0 and "verified" in out, err


def test_a_target_with_other_data_is_refused_unless_forced(sqlite_site: Populated, tmp_path: Path,
                                                           postgres_url: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    populate(tmp_path / "other", postgres_url, studies=1)
    args = ("migrate", "--data-dir", str(sqlite_site.data_dir), "--to", postgres_url)
    code, _, err = run_cli(capsys, *args)
    assert code == 1 and "already holds data" in err and "--force" in err
    code, out, err = run_cli(capsys, *args, "--force")
    assert code == 0 and "verified" in out, err
    # Another source into the same target: refused, naming the source it holds.
    second = populate(tmp_path / "third", f"sqlite:///{tmp_path / 'third' / 'index.sqlite3'}", studies=1)
    code, _, err = run_cli(capsys, "migrate", "--data-dir", str(second.data_dir), "--to", postgres_url)
    assert code == 1 and "another source" in err and str(sqlite_site.data_dir) in err


def test_dry_run_counts_and_copies_nothing(sqlite_site: Populated, postgres_url: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "migrate", "--data-dir", str(sqlite_site.data_dir), "--to", postgres_url,
                           "--dry-run", "--storage-path", str(sqlite_site.data_dir.parent / "new"), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["rows"]["instances"] == 18 and data["object_files"] == 19 and data["estimated_seconds"] >= 0
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == []  # the target was not even created
    engine.dispose()
    assert not (sqlite_site.data_dir.parent / "new").exists()


def test_usage_errors(sqlite_site: Populated, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "migrate", "--data-dir", str(tmp_path / "nothing"),
                           "--to", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    assert code == 2 and "does not exist" in err
    code, _, err = run_cli(capsys, "migrate", "--data-dir", str(sqlite_site.data_dir), "--to", sqlite_site.url)
    assert code == 2 and "current index" in err
    code, _, err = run_cli(capsys, "migrate", "--to", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    assert code == 2 and "--config" in err


def test_migrate_and_upgrade_from_a_configuration_file(sqlite_site: Populated, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "site.toml"
    config.write_text(f'[site]\nname = "A"\ndata_dir = "{sqlite_site.data_dir}"\n\n'
                      f'[database]\nurl = "{sqlite_site.url}"\n')
    target = f"sqlite:///{tmp_path / 'copy.sqlite3'}"
    code, out, err = run_cli(capsys, "migrate", "--config", str(config), "--to", target)
    assert code == 0 and "verified" in out, err
    code, out, _ = run_cli(capsys, "db", "status", "--config", str(config))
    assert code == 0 and "up to date" in out
