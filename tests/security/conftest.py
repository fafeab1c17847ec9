"""Sites with the HTTP door closed (the secure default: no anonymous access), served by a real
uvicorn on 127.0.0.1, with one configured API token and one account per role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from twinpacs.app import Site, build_site
from twinpacs.config import load_settings
from twinpacs.core.accounts import ROLES
from twinpacs.web.auth import Guard
from tests.backend import backend_url
from tests.served import ServedApp

OPENER = "TWINPACS_SECURITY__ANONYMOUS_ROLE"  # set by tests/conftest.py for the older suites
TOKENS = {role: f"{role}-token-".ljust(40, "x") for role in ROLES}  # security.api_tokens, one per role
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def secure_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OPENER, raising=False)


def secure_settings(root: Path, name: str = "SEC", **sections: Any) -> dict[str, Any]:
    data_dir = root / name
    security = {"api_tokens": [{"name": f"{role}-client", "token": token, "role": role}
                               for role, token in TOKENS.items()], **sections.pop("security", {})}
    return {"site": {"data_dir": data_dir, "name": name, "ae_title": name},
            "database": {"url": backend_url(data_dir)}, "security": security, **sections}


def guard(served: ServedApp) -> Guard:
    return served.server.config.app.state.guard  # type: ignore[no-any-return]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    built = build_site(load_settings(overrides=secure_settings(tmp_path)))
    yield built
    built.close()


@pytest.fixture
def served(site: Site) -> Iterator[ServedApp]:
    http = ServedApp(site)
    for role in ROLES:
        guard(http).accounts.add(f"{role}1", role, PASSWORD)  # the same store `twinpacs user add` writes
    yield http
    http.stop()


def bearer(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


def login(served: ServedApp, name: str, password: str = PASSWORD, next_path: str = "/") -> httpx.Client:
    """A browser-like client signed in through the login form."""
    client = httpx.Client(base_url=served.url, follow_redirects=False)
    form = client.get("/login")
    assert form.status_code == 200
    answer = client.post("/login", data={"name": name, "password": password, "next": next_path,
                                         "csrf_token": csrf_of(form.text)})
    assert answer.status_code == 303, answer.text
    return client


def csrf_of(html: str) -> str:
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]
