"""OpenID Connect against a provider nobody here wrote: panva/node-oidc-provider (OpenID
Certified), run by Node.js from tests/security/oidc_node (scripts/setup.sh installs it). Its
own login and consent pages are filled in as a browser would; by its defaults the ID token
holds only `sub`, so the user name and the roles come from its userinfo endpoint. Logging out
of twinpacs ends the provider's session too (RP-Initiated Logout)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from twinpacs.app import build_site
from twinpacs.config import load_settings
from twinpacs.web.auth import SESSION_COOKIE
from tests.e2e.live import free_port
from tests.served import ServedApp

from .conftest import csrf_of, secure_settings

PROVIDER = Path(__file__).with_name("oidc_node")
CLIENT_ID = "twinpacs"
CLIENT_SECRET = "interop-secret-" + "x" * 24

if shutil.which("node") is None or not (PROVIDER / "node_modules" / "oidc-provider").is_dir():
    pytest.exit("the test OpenID Connect provider is not installed: run scripts/setup.sh", returncode=3)


@dataclass
class Interop:
    site: ServedApp
    issuer: str


@pytest.fixture
def interop(tmp_path: Path) -> Iterator[Interop]:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    oidc = {"issuer": issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "role_map": {"pacs-readers": "radiologist"}}
    site = build_site(load_settings(overrides=secure_settings(tmp_path, security={"oidc": oidc})))
    served = ServedApp(site)
    node = subprocess.Popen(["node", str(PROVIDER / "provider.mjs"), str(port), CLIENT_ID, CLIENT_SECRET,
                             f"{served.url}/login/oidc/callback", f"{served.url}/login"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                assert node.poll() is None and time.monotonic() < deadline, "node-oidc-provider did not start"
                time.sleep(0.1)
        yield Interop(served, issuer)
    finally:
        node.terminate()
        node.wait(10)
        served.stop()
        site.close()


def at_provider(client: httpx.Client, location: str, interop: Interop, user: str) -> str:
    """Follows the provider's redirects and submits its pages (login as `user`, consent, logout
    confirmation) until it sends the browser back to twinpacs; that URL."""
    for _ in range(12):
        if location.startswith(interop.site.url):
            return location
        answer = client.get(urljoin(interop.issuer, location))
        if answer.status_code == 200:  # one of the provider's forms
            action = re.search(r'<form[^>]*action="([^"]+)"', answer.text)
            assert action, answer.text
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', answer.text))
            if 'name="login"' in answer.text:
                fields |= {"login": user, "password": "anything"}  # its development login takes any
            if 'name="logout"' in answer.text:
                fields["logout"] = "yes"
            answer = client.post(urljoin(interop.issuer, action.group(1)), data=fields)
        assert answer.status_code in (302, 303), answer.text
        location = answer.headers["location"]
    raise AssertionError("the provider never sent the browser back")


def sign_in(interop: Interop, user: str) -> tuple[httpx.Client, httpx.Response]:
    client = httpx.Client(base_url=interop.site.url, follow_redirects=False)
    to_provider = client.get("/login/oidc")
    assert to_provider.status_code == 303
    return client, client.get(at_provider(client, to_provider.headers["location"], interop, user))


def test_sign_in_with_roles_from_userinfo_and_sign_out_at_the_provider(interop: Interop) -> None:
    client, answer = sign_in(interop, "reader-alice")
    assert answer.status_code == 303 and answer.headers["location"] == "/", answer.text
    page = client.get("/")
    assert page.status_code == 200 and 'id="user-name">oidc:reader-alice<' in page.text
    assert client.get("/admin/config").status_code == 403  # pacs-readers: a radiologist

    cookie = client.cookies[SESSION_COOKIE]
    out = client.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303 and out.headers["location"].startswith(f"{interop.issuer}/session/end?")
    back = at_provider(client, out.headers["location"], interop, "reader-alice")
    assert back == f"{interop.site.url}/login"
    replay = httpx.get(f"{interop.site.url}/", cookies={SESSION_COOKIE: cookie}, follow_redirects=False)
    assert replay.status_code == 303  # the session ended here
    # ...and at the provider: signing in again asks for the login, not straight back in.
    to_provider = client.get("/login/oidc").headers["location"]
    prompt = client.get(urljoin(interop.issuer, client.get(to_provider).headers["location"]))
    assert prompt.status_code == 200 and 'name="login"' in prompt.text
    client.close()


def test_a_user_the_provider_gives_no_mapped_group_is_refused(interop: Interop) -> None:
    client, answer = sign_in(interop, "bob")
    assert answer.status_code == 403 and "oidc:bob" not in answer.text
    assert "bob has no role in twinpacs" in answer.text
    assert SESSION_COOKIE not in client.cookies
    client.close()
