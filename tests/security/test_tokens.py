"""API tokens: those of the configuration and those `twinpacs user token` makes (stored only as
a hash), the `user` commands, `serve --api-token`, and tokens masked wherever settings are shown."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from twinpacs.app import Site
from twinpacs.core.accounts import digest
from twinpacs.fingerprint import record_start
from twinpacs.index.config_starts import SqlConfigStarts
from twinpacs.index.schema import account_tokens, accounts
from tests.served import ServedApp

from tests.cli_run import run_cli

from .conftest import PASSWORD, TOKENS, csrf_of, guard


def _db_args(site: Site) -> list[str]:
    return ["--data-dir", str(site.settings.site.data_dir), "--database-url", site.settings.database_url]


def test_user_commands_make_accounts_and_tokens_kept_as_hashes_only(
        served: ServedApp, site: Site, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    db = _db_args(site)
    code, out, err = run_cli(capsys, "user", "add", "dr.who", "--role", "radiologist", "--password-stdin", *db,
                             stdin=PASSWORD + "\n", monkeypatch=monkeypatch)
    assert code == 0, err
    code, _, err = run_cli(capsys, "user", "add", "short", "--role", "radiologist", "--password-stdin", *db,
                           stdin="tiny\n", monkeypatch=monkeypatch)
    assert code == 1 and "at least 12 characters" in err
    code, _, err = run_cli(capsys, "user", "add", "x", "--role", "superuser", "--password-stdin", *db)
    assert code == 2 and "unknown role" in err
    code, out, err = run_cli(capsys, "user", "token", "dr.who", *db)
    assert code == 0, err
    token = out.strip()
    assert len(token) >= 40
    with site.index.db.read() as conn:
        stored = conn.execute(select(account_tokens.c.token_hash)).scalars().all()
        hashes = conn.execute(select(accounts.c.password_hash).where(accounts.c.name == "dr.who")).scalar_one()
    assert stored == [digest(token)] and PASSWORD not in hashes and hashes.startswith("$argon2id$")

    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{served.url}/dicom-web/studies", headers=bearer).status_code in (200, 204)
    assert httpx.get(f"{served.url}/api/config", headers=bearer).status_code == 403  # a radiologist's token

    code, out, _ = run_cli(capsys, "user", "list", "--json", *db)
    listed = {u["name"]: u for u in json.loads(out)}
    assert listed["dr.who"]["role"] == "radiologist" and not listed["dr.who"]["disabled"]
    assert run_cli(capsys, "user", "disable", "dr.who", *db)[0] == 0
    assert httpx.get(f"{served.url}/dicom-web/studies", headers=bearer).status_code == 401
    assert run_cli(capsys, "user", "token", "nobody", *db)[0] == 1


def test_remote_commands_send_the_token(served: ServedApp, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run_cli(capsys, "sync", "status", "--url", served.url, "--json")
    assert code == 1 and "TWINPACS_TOKEN" in err
    code, out, err = run_cli(capsys, "--token", TOKENS["administrator"], "sync", "status", "--url", served.url,
                             "--json")
    assert code == 0, err
    monkeypatch.setenv("TWINPACS_TOKEN", TOKENS["service"])
    assert run_cli(capsys, "sync", "status", "--url", served.url, "--json")[0] == 0


def test_serve_api_token_flag_refuses_a_bad_role(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "serve", "--data-dir", str(tmp_path), "--no-peers", "--role", "active",
                           "--database-url", f"sqlite:///{tmp_path / 'i.sqlite3'}", "--api-token", "a" * 40 + "=root")
    assert code == 2 and "--api-token" in err and "a" * 40 not in err
    code, _, err = run_cli(capsys, "serve", "--data-dir", str(tmp_path), "--no-peers", "--role", "active",
                           "--database-url", f"sqlite:///{tmp_path / 'i.sqlite3'}", "--api-token", "short=service")
    assert code == 2 and "32 characters" in err and "short" not in err.split("characters")[-1]


def test_config_show_and_the_start_history_mask_every_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret, peer_secret = "s" * 40, "p" * 40
    config = tmp_path / "site.toml"
    config.write_text(f"""
[site]
data_dir = "{tmp_path / 'data'}"
role = "active"
[database]
url = "sqlite:///{tmp_path / 'index.sqlite3'}"
[[peers]]
name = "B"
api_url = "http://127.0.0.1:9"
token = "{peer_secret}"
[security]
api_tokens = [{{ name = "viewer", token = "{secret}", role = "service" }}]
""")
    code, out, err = run_cli(capsys, "config", "show", "--config", str(config), "--json")
    assert code == 0, err
    assert secret not in out and peer_secret not in out
    shown = json.loads(out)
    flat = json.dumps(shown)
    assert "security.api_tokens[0].name" in flat and "viewer" in flat
    code, out, err = run_cli(capsys, "config", "check", str(config))
    assert secret not in out + err and peer_secret not in out + err


def test_the_start_history_keeps_no_token(site: Site) -> None:
    record_start(site)
    (start,) = SqlConfigStarts(site.index.db).latest()
    kept = json.dumps(asdict(start), default=str)
    assert "security.api_tokens[0].token" in kept
    assert not any(token in kept for token in TOKENS.values())


def test_tokens_are_listed_and_revoked_one_or_all_and_passwords_changed(
        served: ServedApp, site: Site, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    db = _db_args(site)
    assert run_cli(capsys, "user", "add", "viewer", "--role", "service", "--password-stdin", *db,
                   stdin=PASSWORD + "\n", monkeypatch=monkeypatch)[0] == 0
    first, second, third = (run_cli(capsys, "user", "token", "viewer", *db)[1].strip() for _ in range(3))

    def answers(token: str) -> int:
        answer = httpx.get(f"{served.url}/dicom-web/studies", headers={"Authorization": f"Bearer {token}"})
        return answer.status_code

    assert [answers(t) for t in (first, second, third)] == [200, 200, 200]
    code, out, err = run_cli(capsys, "user", "tokens", "viewer", "--json", *db)
    assert code == 0, err
    numbers = [t["id"] for t in json.loads(out)]
    assert len(numbers) == 3 and all(t["created_at"].endswith("+00:00") for t in json.loads(out))

    code, out, _ = run_cli(capsys, "user", "revoke-token", "viewer", "--id", str(numbers[1]), *db)
    assert code == 0 and "1 token(s) of viewer revoked" in out
    assert [answers(t) for t in (first, second, third)] == [200, 401, 200]  # at the next request, no restart
    code, _, err = run_cli(capsys, "user", "revoke-token", "viewer", "--id", str(numbers[1]), *db)
    assert code == 1 and f"no token number {numbers[1]}" in err
    assert run_cli(capsys, "user", "revoke-token", "viewer", *db)[0] == 2  # which one: --id or --all
    assert run_cli(capsys, "user", "revoke-token", "nobody", "--all", *db)[0] == 1
    code, out, _ = run_cli(capsys, "user", "revoke-token", "viewer", "--all", *db)
    assert code == 0 and "2 token(s) of viewer revoked" in out
    assert [answers(t) for t in (first, third)] == [401, 401]
    assert json.loads(run_cli(capsys, "user", "tokens", "viewer", "--json", *db)[1]) == []

    new_password = "another long passphrase"
    signed_in = httpx.Client(base_url=served.url)
    form = signed_in.get("/login")
    assert signed_in.post("/login", data={"name": "viewer", "password": PASSWORD, "next": "/",
                                          "csrf_token": csrf_of(form.text)}).status_code == 303
    assert signed_in.get("/dicom-web/studies").status_code == 200
    code, out, err = run_cli(capsys, "user", "password", "viewer", "--password-stdin", *db,
                             stdin=new_password + "\n", monkeypatch=monkeypatch)
    assert code == 0 and "sessions ended" in out, err
    assert signed_in.get("/dicom-web/studies").status_code == 401  # the open session ended with it
    assert guard(served).accounts.login("viewer", new_password) is not None
    assert guard(served).accounts.login("viewer", PASSWORD) is None
    assert run_cli(capsys, "user", "password", "viewer", "--password-stdin", *db, stdin="tiny\n",
                   monkeypatch=monkeypatch)[0] == 1

    assert run_cli(capsys, "user", "disable", "viewer", *db)[0] == 0
    assert guard(served).accounts.login("viewer", new_password) is None
    assert run_cli(capsys, "user", "enable", "viewer", *db)[0] == 0
    assert guard(served).accounts.login("viewer", new_password) is not None
    assert run_cli(capsys, "user", "enable", "nobody", *db)[0] == 1
