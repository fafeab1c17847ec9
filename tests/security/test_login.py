"""Signing in with the form: CSRF, wrong passwords, the rate limit, the cookie's flags, CSRF on
every later form and cookie-authenticated POST, logout, and a disabled account."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from twinpacs.app import Site, build_site
from twinpacs.config import load_settings
from twinpacs.core.access_trail import trail_filter
from twinpacs.index.login_attempts import SqlLoginAttempts
from twinpacs.web.auth import SESSION_COOKIE
from tests.served import ServedApp

from .conftest import PASSWORD, csrf_of, guard, login, secure_settings


def test_login_form_sets_a_strict_session_cookie_and_shows_who_is_signed_in(served: ServedApp) -> None:
    with httpx.Client(base_url=served.url, follow_redirects=False) as client:
        form = client.get("/login?next=/admin/config")
        assert form.status_code == 200 and 'name="password"' in form.text
        answer = client.post("/login", data={"name": "administrator1", "password": PASSWORD,
                                             "next": "/admin/config", "csrf_token": csrf_of(form.text)})
        assert answer.status_code == 303 and answer.headers["location"] == "/admin/config"
        cookie = next(v for k, v in answer.headers.multi_items()
                      if k == "set-cookie" and v.startswith(SESSION_COOKIE))
        flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"httponly", "path", "max-age", "samesite"} <= flags and "secure" not in flags  # plain http here
        assert "samesite=lax" in cookie.lower()
        page = client.get("/admin/config")
        assert page.status_code == 200
        assert 'id="user-name">administrator1<' in page.text and 'action="/logout"' in page.text
        assert PASSWORD not in page.text


def test_login_refuses_a_missing_csrf_token_and_a_wrong_password(served: ServedApp) -> None:
    with httpx.Client(base_url=served.url, follow_redirects=False) as client:
        client.get("/login")
        no_csrf = client.post("/login", data={"name": "radiologist1", "password": PASSWORD})
        assert no_csrf.status_code == 403 and SESSION_COOKIE not in no_csrf.headers.get("set-cookie", "")
        form = client.get("/login")
        wrong = client.post("/login", data={"name": "radiologist1", "password": "not the password",
                                            "csrf_token": csrf_of(form.text)})
        assert wrong.status_code == 401 and "Wrong name or password" in wrong.text
        assert SESSION_COOKIE not in wrong.headers.get("set-cookie", "")
        unknown = client.post("/login", data={"name": "nobody", "password": PASSWORD,
                                              "csrf_token": csrf_of(wrong.text)})
        assert unknown.status_code == 401
        assert client.get("/").status_code == 303  # still not signed in
    # A session of one role does not give another's rights.
    radiologist = login(served, "radiologist1")
    assert radiologist.get("/").status_code == 200
    assert radiologist.get("/admin/config").status_code == 403
    assert 'href="/admin/config"' not in radiologist.get("/").text  # the navigation shows only what opens
    radiologist.close()


def test_login_attempts_are_limited_per_address_and_name(tmp_path: Path) -> None:
    site = build_site(load_settings(overrides=secure_settings(tmp_path, security={"login_attempts_per_minute": 3})))
    http = ServedApp(site)
    guard(http).accounts.add("radiologist1", "radiologist", PASSWORD)
    try:
        with httpx.Client(base_url=http.url, follow_redirects=False) as client:
            html = client.get("/login").text
            codes = []
            for _ in range(4):
                answer = client.post("/login", data={"name": "radiologist1", "password": "guess " * 3,
                                                     "csrf_token": csrf_of(html)})
                codes.append(answer.status_code)
                html = answer.text
            assert codes == [401, 401, 401, 429]
            assert 1 <= int(answer.headers["retry-after"]) <= 60
            # Even the right password waits: a guesser learns nothing from the 429.
            right = client.post("/login", data={"name": "radiologist1", "password": PASSWORD,
                                                "csrf_token": csrf_of(html)})
            assert right.status_code == 429
    finally:
        http.stop()
        site.close()


def test_the_login_limit_is_shared_by_two_nodes_on_one_database(tmp_path: Path) -> None:
    """A site served by two processes (or two nodes behind one name) on the same index: a
    guesser who spreads the attempts over both still gets three in a minute, not six."""
    first = secure_settings(tmp_path, "N1", security={"login_attempts_per_minute": 3})
    second = secure_settings(tmp_path, "N2", security={"login_attempts_per_minute": 3})
    second["database"] = first["database"]
    sites = [build_site(load_settings(overrides=first)), build_site(load_settings(overrides=second))]
    nodes = [ServedApp(site) for site in sites]
    guard(nodes[0]).accounts.add("radiologist1", "radiologist", PASSWORD)
    try:
        codes = []
        for attempt in range(6):
            with httpx.Client(base_url=nodes[attempt % 2].url, follow_redirects=False) as client:
                html = client.get("/login").text
                codes.append(client.post("/login", data={"name": "radiologist1", "password": "guess " * 3,
                                                         "csrf_token": csrf_of(html)}).status_code)
        assert codes == [401, 401, 401, 429, 429, 429]
    finally:
        for node, site in zip(nodes, sites):
            node.stop()
            site.close()


def test_attempts_older_than_a_minute_no_longer_count(site: Site) -> None:
    attempts = SqlLoginAttempts(site.index.db)
    start = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)
    for second in range(3):
        assert attempts.record_unless_over(["a", "b"], start + timedelta(seconds=second), 3) is None
    # Key "a" is full until its oldest attempt is a minute old; "b" alone would be too; "c" is free.
    assert attempts.record_unless_over(["a", "c"], start + timedelta(seconds=30), 3) == start + timedelta(minutes=1)
    assert attempts.record_unless_over(["c"], start + timedelta(seconds=30), 3) is None
    assert attempts.record_unless_over(["a"], start + timedelta(seconds=60, microseconds=1), 3) is None
    with site.index.db.read() as conn:  # the two of the first second are pruned: the table stays small
        assert conn.exec_driver_sql("SELECT count(*) FROM login_attempts").scalar() == 6


def test_forms_and_cookie_posts_need_the_sessions_csrf_token(served: ServedApp) -> None:
    client = login(served, "administrator1", next_path="/admin/notices")
    page = client.get("/admin/notices")
    token = csrf_of(page.text)
    fields = {"severity": "warning", "title": "Planned downtime", "body": "", "posted_by": "test"}
    assert client.post("/admin/notices", data=fields).status_code == 403
    assert client.post("/admin/notices", data={**fields, "csrf_token": "x" * 43}).status_code == 403
    posted = client.post("/admin/notices", data={**fields, "csrf_token": token})
    assert posted.status_code == 303 and "Planned downtime" in client.get("/admin/notices").text
    notice = {"severity": "info", "title": "by JSON", "body": "", "posted_by": "test"}
    assert client.post("/api/notices", json=notice).status_code == 403
    assert client.post("/api/notices", json=notice, headers={"X-CSRF-Token": token}).status_code == 201
    client.close()


def test_logout_ends_the_session_on_the_server(served: ServedApp) -> None:
    client = login(served, "radiographer1")
    cookie = client.cookies[SESSION_COOKIE]
    token = csrf_of(client.get("/").text)
    assert client.post("/logout", data={"csrf_token": "wrong"}).status_code == 403
    out = client.post("/logout", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    replay = httpx.get(f"{served.url}/", cookies={SESSION_COOKIE: cookie}, follow_redirects=False)
    assert replay.status_code == 303 and replay.headers["location"].startswith("/login")
    client.close()


def test_a_disabled_user_loses_session_and_token_at_once(served: ServedApp) -> None:
    accounts = guard(served).accounts
    client = login(served, "radiologist1")
    token = accounts.new_token("radiologist1")
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{served.url}/dicom-web/studies", headers=bearer).status_code in (200, 204)
    accounts.disable("radiologist1")
    assert client.get("/").status_code == 303
    assert httpx.get(f"{served.url}/dicom-web/studies", headers=bearer).status_code == 401
    with httpx.Client(base_url=served.url, follow_redirects=False) as again:
        form = again.get("/login")
        answer = again.post("/login", data={"name": "radiologist1", "password": PASSWORD,
                                            "csrf_token": csrf_of(form.text)})
        assert answer.status_code == 401
    client.close()


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_login_never_sends_the_browser_off_site(served: ServedApp, target: str) -> None:
    with httpx.Client(base_url=served.url, follow_redirects=False) as fresh:
        form = fresh.get("/login")
        answer = fresh.post("/login", data={"name": "radiologist1", "password": PASSWORD, "next": target,
                                            "csrf_token": csrf_of(form.text)})
        assert answer.headers["location"] == "/"


def test_logins_and_logouts_go_to_the_access_trail_without_any_password(served: ServedApp, site: Site) -> None:
    with httpx.Client(base_url=served.url, follow_redirects=False) as client:
        form = client.get("/login")
        client.post("/login", data={"name": "radiologist1", "password": "wrong password",
                                    "csrf_token": csrf_of(form.text)})
    client = login(served, "radiologist1")
    client.post("/logout", data={"csrf_token": csrf_of(client.get("/").text)})
    client.close()
    entries = [r.as_dict() for r in site.access_trail.entries(trail_filter(who="radiologist1"))]
    mine = [(e["action"], e["outcome"], e["door"], e["address"]) for e in entries if e["action"] in ("login", "logout")]
    assert mine == [("logout", "success", "http", "127.0.0.1"), ("login", "success", "http", "127.0.0.1"),
                    ("login", "refused", "http", "127.0.0.1")]
    assert not any(PASSWORD in str(e) or "wrong password" in str(e) for e in entries)
