"""Every configuration error stops `twinpacs serve` and `twinpacs config check` with exit code
2 and a message naming the key, the file and the line (or the environment variable); never a
traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import clean_env, site_toml, twinpacs

COMMANDS = (("serve", "--config"), ("config", "check"))


def _both(config: Path, env: dict[str, str] | None = None, commands: tuple[tuple[str, str], ...] = COMMANDS) -> list[str]:
    """stderr of `serve --config F` and of `config check F`, each asserted to exit 2."""
    outputs = []
    for command in commands:
        result = twinpacs(*command, str(config), env=env)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        outputs.append(" ".join(result.stderr.split()))  # rich wraps long lines: compare unwrapped
    return outputs


def test_wrong_type_names_key_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text(site_toml(tmp_path / "data").replace("port = 0\n", 'port = "eleven"\n', 1))
    line = config.read_text().splitlines().index('port = "eleven"') + 1
    for stderr in _both(config):
        assert f"{config}:{line}: dicom.port:" in stderr and "eleven" in stderr


def test_unknown_key_names_key_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text(site_toml(tmp_path / "data", extra="\n[storage]\nconflict_policy = \"keep-first\"\ncolour = 1\n"))
    line = config.read_text().splitlines().index("colour = 1") + 1
    for stderr in _both(config):
        assert f"{config}:{line}: storage.colour: unknown setting" in stderr


def test_error_in_second_peer_points_at_its_line(tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    peers = ('\n[[peers]]\nname = "B"\ndicomweb_url = "http://127.0.0.1:8081/dicom-web"\n'
             '\n[[peers]]\nname = "V"\nkind = "dimse"\nae_title = "VENDOR"\nport = 70000\n')
    config.write_text(site_toml(tmp_path / "data", extra=peers).replace("peers = []\n", ""))
    line = config.read_text().splitlines().index("port = 70000") + 1
    for stderr in _both(config, commands=COMMANDS[1:]):
        assert f"{config}:{line}: peers[1].port:" in stderr


def test_missing_required_settings_are_all_named_with_the_file(tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text(f'[site]\nae_title = "A"\ndata_dir = "{tmp_path / "data"}"\n')
    for stderr in _both(config):
        assert f"missing in {config}" in stderr
        for key in ("site.role", "database.url", "peers"):
            assert f"{key}:" in stderr
        assert "site.data_dir:" not in stderr
    assert not (tmp_path / "data").exists()  # refused before anything was created


def test_missing_data_dir_is_named(tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text('[site]\nae_title = "A"\n')
    for stderr in _both(config, commands=COMMANDS[:1]):
        assert f"{config}: site.data_dir: required setting is missing" in stderr


def test_toml_syntax_error_keeps_the_line(tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text('[site]\nae_title = "A"\ndata_dir =\n')
    for stderr in _both(config):
        assert f"{config}:3: TOML syntax error" in stderr and "line 3" in stderr


def test_environment_error_names_the_variable(tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text(site_toml(tmp_path / "data"))
    for stderr in _both(config, env=clean_env(TWINPACS_HTTP__PORT="http"), commands=COMMANDS[1:]):
        assert "environment TWINPACS_HTTP__PORT: http.port:" in stderr


@pytest.mark.parametrize("flags, named", [
    ((), ("site.role", "database.url", "peers")),
    (("--role", "active", "--no-peers"), ("database.url",)),
    (("--role", "active", "--database-url", "sqlite:///x.sqlite3"), ("peers",)),
])
def test_serve_flags_complete_the_required_set(tmp_path: Path, flags: tuple[str, ...], named: tuple[str, ...]) -> None:
    result = twinpacs("serve", "--data-dir", str(tmp_path / "d"), *flags)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "(no configuration file)" in result.stderr
    for key in ("site.role", "database.url", "peers"):
        assert (f"{key}:" in result.stderr) == (key in named)


def test_no_peers_and_peer_contradict(tmp_path: Path) -> None:
    result = twinpacs("serve", "--data-dir", str(tmp_path), "--no-peers", "--peer", "B=http://127.0.0.1:1")
    assert result.returncode == 2 and "contradict" in result.stderr


def test_offline_commands_need_only_the_data_dir(tmp_path: Path) -> None:
    result = twinpacs("figures", "--data-dir", str(tmp_path / "site"), "--json")
    assert result.returncode == 0, result.stderr
