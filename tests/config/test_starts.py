"""The fingerprint of every start: recorded before the listeners open, compared with the
previous start, announced loudly when they differ, listed and compared by `config history`
and `config diff`; a start whose history is missing while the index holds objects is refused."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.backend import backend_url, create_schema, schema_url
from tests.e2e.live import LiveSite
from twinpacs.announcements import Announcements
from twinpacs.app import Site, build_site
from twinpacs.config import load_settings
from twinpacs.errors import ConfigurationError
from twinpacs.fingerprint import NOTICE_TITLE, record_start
from twinpacs.index.config_starts import SqlConfigStarts
from twinpacs.index.migrate import CREATED_KEY
from twinpacs.index.schema import config_starts, site_state
from twinpacs.synthetic import StudySpec, make_studies, write_study
from twinpacs.web import create_app

from .helpers import clean_env, site_toml, twinpacs

SECRET = "hunter2"


def _site(data_dir: Path, **sections: Any) -> Site:
    overrides = {"site": {"data_dir": data_dir, "role": "active"}, "peers": [],
                 "database": {"url": backend_url(data_dir)}, **sections}
    return build_site(load_settings(overrides=overrides))


def _store_one(site: Site, tmp_path: Path) -> None:
    (spec,) = make_studies(1, StudySpec(series=1, instances_per_series=1, rows=8, columns=8))
    (path,) = write_study(spec, tmp_path / "in")
    site.archive.store(path.read_bytes(), "test")


def _as_from_a_version_without_history(site: Site) -> None:
    """Remove the mark a new index gets at creation: what a database from before
    configuration history looks like."""
    with site.index.db.writer.begin() as conn:
        conn.execute(sa.delete(site_state).where(site_state.c.key == CREATED_KEY))


def test_a_changed_setting_is_logged_recorded_and_announced(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = _site(tmp_path / "d")
    try:
        record = record_start(first)
        assert record.previous is None and record.changes is None
        assert record_start(first).changes.empty  # type: ignore[union-attr]  # same settings: no change
    finally:
        first.close()
    second = _site(tmp_path / "d", dicom={"port": 104})
    try:
        with caplog.at_level(logging.INFO, logger="twinpacs"):
            record = record_start(second)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert warnings == ["configuration changed since last start: dicom.port 11112 -> 104 (default -> explicit)"]
        assert record.changes is not None and [c.key for c in record.changes.settings] == ["dicom.port"]
        starts = SqlConfigStarts(second.index.db).all()
        assert [s.id for s in starts] == [1, 2, 3] and starts[2].fingerprint != starts[1].fingerprint
        assert starts[2].settings["dicom.port"] == {"value": 104, "explicit": True, "source": "flag"}
        env = starts[2].environment
        assert env["twinpacs"] and env["sqlalchemy"] and env["os"] and env["database.engine"] in ("sqlite", "postgresql")
        (notice,) = Announcements.from_site(second).notices.active()
        assert notice.title == NOTICE_TITLE and notice.severity == "warning" and "dicom.port 11112 -> 104" in notice.body
    finally:
        second.close()


def test_missing_history_with_objects_refuses_unless_accepted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    site = _site(tmp_path / "d")
    try:
        _store_one(site, tmp_path)
        assert record_start(site).previous is None  # a new index filled before its first start: fine
        with site.index.db.writer.begin() as conn:
            conn.execute(sa.delete(config_starts))
        _as_from_a_version_without_history(site)
        with pytest.raises(ConfigurationError, match="--accept-missing-history"):
            record_start(site)
        assert SqlConfigStarts(site.index.db).count() == 0
        with caplog.at_level(logging.WARNING, logger="twinpacs"):
            record = record_start(site, accept_missing_history=True)
        assert record.start.id and "configuration history missing" in caplog.text
        (entry,) = Announcements.from_site(site).operator_log.entries(action="config.accept-missing-history")
        assert entry.actor
        assert record_start(site).previous is not None  # from now on the history exists
    finally:
        site.close()


def test_serve_refuses_an_index_with_objects_and_no_history(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    config = tmp_path / "site.toml"
    config.write_text(site_toml(data_dir))
    site = build_site(load_settings(config))  # the file's own SQLite database, whatever the run's backend
    try:
        _store_one(site, tmp_path)
        _as_from_a_version_without_history(site)
    finally:
        site.close()
    result = twinpacs("serve", "--config", str(config), env=clean_env())
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert "no record of any previous start" in message and "--accept-missing-history" in message
    assert "Traceback" not in result.stderr and "twinpacs ready" not in result.stderr


def test_two_starts_with_a_changed_setting_show_in_log_diff_history_and_api(tmp_path: Path) -> None:
    # A password in the database URL (PostgreSQL here trusts local connections and ignores it):
    # it must never appear in any output or record.
    database_url = schema_url(create_schema()).replace("postgres@", f"postgres:{SECRET}@", 1)
    assert SECRET in database_url
    config = tmp_path / "site.toml"
    config.write_text(site_toml(tmp_path / "d", database_url))
    site = LiveSite(tmp_path / "d", "TWINPACS_A", ("--config", str(config), "--database-url", database_url))
    site.start()
    site.stop()
    assert "first start recorded" in "".join(site.log)
    config.write_text(site_toml(tmp_path / "d", database_url, extra="\n[replication]\nbatch_size = 50\n"))
    site.start()
    try:
        log = "".join(site.log)
        assert "WARNING twinpacs: configuration changed since last start: replication.batch_size 20 -> 50 " \
               "(default -> explicit)" in log
        url = f"http://127.0.0.1:{site.http_port}"

        diffed = twinpacs("config", "diff", "--url", url)
        assert diffed.returncode == 1, diffed.stderr  # 1: something differs
        assert "start #1" in diffed.stdout and "start #2" in diffed.stdout
        assert "replication.batch_size 20 -> 50 (default -> explicit)" in diffed.stdout
        as_json = json.loads(twinpacs("config", "diff", "1", "2", "--url", url, "--json").stdout)
        assert [(c["key"], c["kind"]) for c in as_json["settings"]] == [("replication.batch_size", "changed")]
        assert as_json["environment"] == []

        history = json.loads(twinpacs("config", "history", "--url", url, "--json").stdout)["starts"]
        assert [(s["id"], s["changed_settings"]) for s in history] == [(1, None), (2, 1)]

        api = httpx.get(f"{url}/api/config", timeout=10).json()
        assert api["start"]["id"] == 2 and api["previous_start_id"] == 1
        assert api["changed_since_previous_start"]["settings"][0]["key"] == "replication.batch_size"
        assert api["settings"]["replication.batch_size"] == {"value": 50, "explicit": True, "source": "file"}
        notices = httpx.get(f"{url}/api/notices", timeout=10).json()["notices"]
        assert [n["title"] for n in notices] == [NOTICE_TITLE]

        shown = twinpacs("config", "show", "--effective", "--url", url)
        assert shown.returncode == 0 and "replication.batch_size" in shown.stdout and "(default)" in shown.stdout
        checked = twinpacs("config", "check", str(config), env=clean_env())
        one_start = httpx.get(f"{url}/api/config/history/2", timeout=10).text
        for output in (log, diffed.stdout, json.dumps(history), json.dumps(api), shown.stdout, checked.stdout,
                       json.dumps(notices), one_start):
            assert SECRET not in output
        assert "postgres:***@127.0.0.1" in api["settings"]["database.url"]["value"]
    finally:
        site.kill()


def test_diff_between_two_files_and_a_file_this_version_refuses(tmp_path: Path) -> None:
    old, new = tmp_path / "old.toml", tmp_path / "new.toml"
    old.write_text(site_toml(tmp_path / "d", extra='\n[storage]\nconflict_policy = "keep-first"\nlegacy = 1\n'))
    new.write_text(site_toml(tmp_path / "d").replace("port = 0\n", "port = 104\n", 1))
    result = twinpacs("config", "diff", str(old), str(new), "--json")
    assert result.returncode == 1 and "does not validate here" in result.stderr
    changes = {c["key"]: c["kind"] for c in json.loads(result.stdout)["settings"]}
    assert changes == {"dicom.port": "changed", "storage.legacy": "removed", "storage.conflict_policy": "now default"}
    same = twinpacs("config", "diff", str(new), str(new))
    assert same.returncode == 0 and "nothing" in same.stdout


@pytest.mark.anyio
async def test_admin_api_shows_the_last_starts_of_an_app_not_started_by_serve(tmp_path: Path) -> None:
    for port in (11112, 104):
        site = _site(tmp_path / "d", dicom={"port": port})
        record_start(site)
        site.close()
    site = _site(tmp_path / "d", dicom={"port": 104})
    try:
        transport = httpx.ASGITransport(app=create_app(site))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            config = (await client.get("/api/config")).json()
            history = (await client.get("/api/config/history")).json()
            missing = await client.get("/api/config/history/99")
        assert config["start"]["id"] == 2 and config["previous_start_id"] == 1
        (change,) = config["changed_since_previous_start"]["settings"]
        assert (change["key"], change["old"], change["new"]) == ("dicom.port", 11112, 104)
        assert config["settings"]["dicom.port"]["value"] == 104
        assert [s["changed_settings"] for s in history["starts"]] == [None, 1]
        assert missing.status_code == 404
    finally:
        site.close()
