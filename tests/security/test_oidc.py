"""Signing in with OpenID Connect against a real provider on 127.0.0.1 (tests/security/oidc_provider.py):
the whole redirect dance, role mapping, and the refusals (unmapped role, wrong state, wrong nonce, a
tampered ID token); with OIDC off, no route and no button."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from twinpacs.app import build_site
from twinpacs.config import load_settings
from twinpacs.core.access_trail import trail_filter
from twinpacs.web.auth import SESSION_COOKIE
from twinpacs.web.oidc import FLOW_COOKIE
from tests.served import ServedApp

from .conftest import csrf_of, secure_settings
from .oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    started = Provider()
    yield started
    started.stop()


@pytest.fixture
def served(tmp_path: Path, provider: Provider) -> Iterator[ServedApp]:
    oidc = {"issuer": provider.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "role_map": {"pacs-readers": "radiologist", "pacs-admins": "administrator"}}
    site = build_site(load_settings(overrides=secure_settings(tmp_path, security={"oidc": oidc})))
    http = ServedApp(site)
    provider.claims, provider.tamper, provider.nonce = {}, False, None
    provider.userinfo, provider.userinfo_sub = {}, None
    yield http
    http.stop()
    site.close()


def sign_in(served: ServedApp, provider: Provider, next_path: str = "/") -> tuple[httpx.Client, httpx.Response]:
    """Follows the redirects by hand: twinpacs -> provider -> twinpacs' callback; the callback's answer."""
    client = httpx.Client(base_url=served.url, follow_redirects=False)
    page = client.get("/login")
    assert 'id="login-oidc"' in page.text and "Sign in with 127.0.0.1" in page.text
    to_provider = client.get("/login/oidc", params={"next": next_path})
    assert to_provider.status_code == 303
    location = to_provider.headers["location"]
    assert location.startswith(f"{provider.issuer}/authorize?")
    asked = parse_qs(urlparse(location).query)
    assert asked["code_challenge_method"] == ["S256"] and asked["nonce"][0] and asked["state"][0]
    back = httpx.get(location, follow_redirects=False)
    assert back.status_code == 302 and back.headers["location"].startswith(f"{served.url}/login/oidc/callback?")
    return client, client.get(back.headers["location"])


def test_a_mapped_user_signs_in_and_gets_the_mapped_role(served: ServedApp, provider: Provider) -> None:
    provider.claims = {"preferred_username": "alice", "roles": ["staff", "pacs-readers"]}
    client, answer = sign_in(served, provider, next_path="/")
    assert answer.status_code == 303 and answer.headers["location"] == "/", answer.text
    assert SESSION_COOKIE in client.cookies
    page = client.get("/")
    assert page.status_code == 200 and 'id="user-name">oidc:alice<' in page.text
    assert client.get("/admin/config").status_code == 403  # a radiologist, not more
    client.close()
    # The provider's role counts at each sign-in: alice promoted there is an administrator here.
    provider.claims = {"preferred_username": "alice", "roles": "pacs-admins"}
    client, answer = sign_in(served, provider)
    assert answer.status_code == 303 and client.get("/admin/config").status_code == 200
    client.close()
    trail = served.server.config.app.state.site.access_trail
    logins = [e.as_dict() for e in trail.entries(trail_filter(who="oidc:alice"))]
    assert [(e["action"], e["outcome"]) for e in logins if e["action"] == "login"] == [("login", "success")] * 2
    assert not any(CLIENT_SECRET in str(e) for e in logins)
    # An administrator can still shut the door on an OIDC user: `twinpacs user disable oidc:alice`.
    served.server.config.app.state.guard.accounts.disable("oidc:alice")
    client, answer = sign_in(served, provider)
    assert answer.status_code == 403 and "This account is disabled" in answer.text
    client.close()


def test_a_role_the_id_token_lacks_is_taken_from_userinfo(served: ServedApp, provider: Provider) -> None:
    """Providers that keep groups out of the ID token (a common default) give them at userinfo."""
    provider.claims = {"preferred_username": "fay"}
    provider.userinfo = {"preferred_username": "not-fay", "roles": ["pacs-readers"]}
    asked = provider.userinfo_requests
    client, answer = sign_in(served, provider)
    assert answer.status_code == 303, answer.text
    assert provider.userinfo_requests == asked + 1
    assert 'id="user-name">oidc:fay<' in client.get("/").text  # the ID token's own claim wins
    assert client.get("/admin/config").status_code == 403
    client.close()
    # With both claims in the ID token, userinfo is not asked.
    provider.claims = {"preferred_username": "fay", "roles": ["pacs-admins"]}
    client, answer = sign_in(served, provider)
    assert answer.status_code == 303 and provider.userinfo_requests == asked + 1
    assert client.get("/admin/config").status_code == 200
    client.close()


def test_userinfo_about_another_subject_is_refused(served: ServedApp, provider: Provider) -> None:
    provider.claims = {"preferred_username": "gus"}
    provider.userinfo, provider.userinfo_sub = {"roles": ["pacs-admins"]}, "subject-2"
    client, answer = sign_in(served, provider)
    assert answer.status_code == 403 and "userinfo is about another user" in answer.text
    assert SESSION_COOKIE not in client.cookies
    client.close()


def test_logout_of_an_oidc_user_signs_out_at_the_provider_too(served: ServedApp, provider: Provider) -> None:
    provider.claims = {"preferred_username": "hal", "roles": ["pacs-readers"]}
    client, answer = sign_in(served, provider)
    assert answer.status_code == 303
    cookie = client.cookies[SESSION_COOKIE]
    out = client.post("/logout", data={"csrf_token": csrf_of(client.get("/").text)})
    assert out.status_code == 303
    location = out.headers["location"]
    assert location.startswith(f"{provider.issuer}/logout?")
    assert parse_qs(urlparse(location).query) == {"client_id": [CLIENT_ID],
                                                  "post_logout_redirect_uri": [f"{served.url}/login"]}
    back = httpx.get(location, follow_redirects=False)  # the provider signs out and sends the browser back
    assert back.status_code == 302 and back.headers["location"] == f"{served.url}/login"
    assert provider.logouts[-1]["client_id"] == CLIENT_ID
    replay = httpx.get(f"{served.url}/", cookies={SESSION_COOKIE: cookie}, follow_redirects=False)
    assert replay.status_code == 303 and replay.headers["location"].startswith("/login")  # ended here too
    client.close()


def test_a_user_without_a_mapped_role_is_refused(served: ServedApp, provider: Provider) -> None:
    provider.claims = {"preferred_username": "bob", "roles": ["staff"]}
    client, answer = sign_in(served, provider)
    assert answer.status_code == 403 and "bob has no role in twinpacs" in answer.text
    assert SESSION_COOKIE not in client.cookies and client.get("/").status_code == 303
    client.close()


def test_a_wrong_state_or_nonce_and_a_tampered_token_are_refused(served: ServedApp, provider: Provider) -> None:
    provider.claims = {"preferred_username": "carol", "roles": ["pacs-readers"]}
    # Wrong state: the callback does not belong to this browser's sign-in (login CSRF).
    client = httpx.Client(base_url=served.url, follow_redirects=False)
    location = client.get("/login/oidc").headers["location"]
    back = httpx.get(location.replace("state=", "state=x"), follow_redirects=False).headers["location"]
    asked = provider.token_requests
    answer = client.get(back)
    assert answer.status_code == 403 and "please sign in again" in answer.text
    assert provider.token_requests == asked  # refused before the code was even used
    client.close()
    # Wrong nonce in the ID token (a replayed token).
    provider.nonce = "another-nonce"
    client, answer = sign_in(served, provider)
    assert answer.status_code == 403 and "ID token is not valid" in answer.text
    client.close()
    # Claims changed after signing.
    provider.nonce, provider.tamper = None, True
    client, answer = sign_in(served, provider)
    assert answer.status_code == 403 and "ID token is not valid (BadSignatureError)" in answer.text
    assert SESSION_COOKIE not in client.cookies
    client.close()
    trail = served.server.config.app.state.site.access_trail
    refused = [e.as_dict() for e in trail.entries(trail_filter(who="oidc"))]
    assert sum(e["action"] == "login" and e["outcome"] == "refused" for e in refused) == 3


def test_an_unreachable_provider_gives_a_clear_502(tmp_path: Path) -> None:
    oidc = {"issuer": "http://127.0.0.1:9", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "timeout_s": 2}
    site = build_site(load_settings(overrides=secure_settings(tmp_path, security={"oidc": oidc})))
    http = ServedApp(site)
    try:
        answer = httpx.get(f"{http.url}/login/oidc", follow_redirects=False)
        assert answer.status_code == 502 and "127.0.0.1 cannot be reached" in answer.text
    finally:
        http.stop()
        site.close()


def test_a_wrong_client_secret_gives_a_502_and_a_used_code_is_refused(tmp_path: Path, provider: Provider) -> None:
    oidc = {"issuer": provider.issuer, "client_id": CLIENT_ID, "client_secret": "not-the-secret",
            "role_map": {"pacs-readers": "radiologist"}}
    site = build_site(load_settings(overrides=secure_settings(tmp_path, security={"oidc": oidc})))
    http = ServedApp(site)
    provider.claims, provider.tamper, provider.nonce = {"preferred_username": "dan", "roles": ["pacs-readers"]}, False, None
    try:
        client, answer = sign_in(http, provider)
        assert answer.status_code == 502 and "did not answer properly" in answer.text
        assert "Traceback" not in answer.text and "not-the-secret" not in answer.text
        client.close()
    finally:
        http.stop()
        site.close()


def test_a_code_is_good_once(served: ServedApp, provider: Provider) -> None:
    provider.claims = {"preferred_username": "erin", "roles": ["pacs-readers"]}
    client = httpx.Client(base_url=served.url, follow_redirects=False)
    back = httpx.get(client.get("/login/oidc").headers["location"], follow_redirects=False).headers["location"]
    flow = {FLOW_COOKIE: client.cookies[FLOW_COOKIE]}  # what an eavesdropper on the browser might have kept
    assert client.get(back).status_code == 303
    replay = httpx.get(f"{served.url}{urlparse(back).path}?{urlparse(back).query}", cookies=flow)
    assert replay.status_code == 403 and "refused the sign-in code" in replay.text
    assert SESSION_COOKIE not in replay.cookies
    client.close()


def test_with_oidc_off_there_is_no_route_and_no_button(tmp_path: Path) -> None:
    site = build_site(load_settings(overrides=secure_settings(tmp_path)))
    http = ServedApp(site)
    try:
        assert httpx.get(f"{http.url}/login/oidc", follow_redirects=False).status_code == 404
        assert httpx.get(f"{http.url}/login/oidc/callback?code=x&state=y").status_code == 404
        page = httpx.get(f"{http.url}/login")
        assert page.status_code == 200 and "login-oidc" not in page.text and "Sign in with" not in page.text
    finally:
        http.stop()
        site.close()
