"""Typed settings: defaults for library use, the required set for serving, provenance marks,
descriptions and masked secrets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from twinpacs.config import (
    REQUIRED_TO_SERVE,
    Settings,
    describe,
    load_settings,
    masked,
    missing_to_serve,
    require_to_serve,
)
from twinpacs.errors import ConfigurationError

from .helpers import clean_env, site_toml, twinpacs


def test_library_use_keeps_its_defaults(tmp_path: Path) -> None:
    settings = load_settings(overrides={"site": {"data_dir": tmp_path}})
    assert settings.site.role == "active" and settings.peers == []
    assert settings.database_url == f"sqlite:///{tmp_path / 'index.sqlite3'}"
    assert missing_to_serve(settings) == ["site.role", "database.url", "peers"]
    with pytest.raises(ConfigurationError, match="site.role"):
        require_to_serve(settings)


def test_explicit_empty_peers_and_a_database_complete_the_set(tmp_path: Path) -> None:
    settings = load_settings(overrides={"site": {"data_dir": tmp_path, "role": "standby"}, "peers": [],
                                        "database": {"url": "sqlite:///x.sqlite3"}})
    require_to_serve(settings)
    empty = load_settings(overrides={"site": {"data_dir": tmp_path, "role": "active"}, "peers": [],
                                     "database": {"url": ""}})
    assert missing_to_serve(empty) == ["database.url"]  # given, but names no database


def test_environment_overrides_the_file_and_is_marked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "site.toml"
    config.write_text(site_toml(tmp_path / "data"))
    monkeypatch.setenv("TWINPACS_DICOM__PORT", "104")
    entries = load_settings(config).effective()
    assert entries["dicom.port"] == {"value": 104, "explicit": True, "source": "env"}
    assert entries["http.port"]["source"] == "file"
    assert entries["dicom.bind"] == {"value": "127.0.0.1", "explicit": False, "source": "default"}
    flagged = load_settings(config, {"dicom": {"port": 11113}}).effective()
    assert flagged["dicom.port"]["value"] == 11113 and flagged["dicom.port"]["source"] == "flag"


def test_config_check_marks_defaults_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text(site_toml(tmp_path / "data"))
    result = twinpacs("config", "check", str(config), env=clean_env(TWINPACS_REPLICATION__BATCH_SIZE="50"))
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert lines["dicom.bind"].endswith("(default)")
    assert lines["site.role"].endswith("file")
    assert "50" in lines["replication.batch_size"] and "env TWINPACS_REPLICATION__BATCH_SIZE" in lines["replication.batch_size"]
    assert "database checks" in result.stdout
    as_json = json.loads(twinpacs("config", "check", str(config), "--json").stdout)
    assert as_json["settings"]["dicom.bind"]["explicit"] is False
    assert as_json["settings"]["peers"] == {"value": [], "explicit": True, "source": "file"}


def _models(model: type[BaseModel]) -> list[tuple[str, type[BaseModel]]]:
    found = []
    for name, info in model.model_fields.items():
        found.append((name, model))
        for arg in (info.annotation, *getattr(info.annotation, "__args__", ())):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                found += _models(arg)
    return found


def test_every_setting_has_a_one_line_description(tmp_path: Path) -> None:
    for name, model in _models(Settings):
        text = model.model_fields[name].description or ""
        assert text.strip() and "\n" not in text, f"{model.__name__}.{name} has no one-line description"
    for key in load_settings(overrides={"site": {"data_dir": tmp_path}}).effective():
        assert describe(key), key
    assert set(REQUIRED_TO_SERVE) <= {"site.data_dir", "site.role", "database.url", "peers"}


@pytest.mark.parametrize("key, value, shown", [
    ("database.url", "postgresql+psycopg://pacs:s3cret@db:5432/pacs", "postgresql+psycopg://pacs:***@db:5432/pacs"),
    ("database.url", "postgresql+psycopg://postgres@127.0.0.1/test", "postgresql+psycopg://postgres@127.0.0.1/test"),
    ("database.url", "sqlite:////srv/x/index.sqlite3", "sqlite:////srv/x/index.sqlite3"),
    ("notices.webhooks", ["https://tok3n@hooks.example/x?token=abc&a=1"], ["https://***@hooks.example/x?token=***&a=1"]),
    ("peers[0].api_token", "abc", "***"),
    ("site.name", "A", "A"),
])
def test_secrets_are_masked_by_key_name_and_url_credentials(key: str, value: Any, shown: Any) -> None:
    assert masked(key, value) == shown


def test_effective_settings_never_hold_a_secret(tmp_path: Path) -> None:
    settings = load_settings(overrides={"site": {"data_dir": tmp_path},
                                        "database": {"url": "postgresql+psycopg://u:hunter2@h/db"},
                                        "notices": {"webhooks": ["http://w:hunter2@h/x"]}})
    assert "hunter2" not in json.dumps(settings.effective())


def test_environment_json_that_does_not_parse_is_a_configuration_error(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWINPACS_PEERS", "[not json")
    with pytest.raises(ConfigurationError, match="environment.*peers"):
        load_settings(overrides={"site": {"data_dir": tmp_path}})
