"""No route is left open by accident: every route of the app is in web/access.py's map, and
with the secure default an anonymous request to any of them is refused (health, the login page
and its stylesheet excepted)."""

from __future__ import annotations

import re

import httpx

from twinpacs.app import Site
from twinpacs.web import create_app
from twinpacs.web.access import ACCESS, PUBLIC, route_keys
from tests.served import ServedApp

PUBLIC_ROUTES = {("GET", "/healthz"), ("GET", "/login"), ("POST", "/login"), ("GET", "/static/{path}"),
                 ("GET", "/login/oidc"), ("GET", "/login/oidc/callback")}  # OIDC sign-in: 404 while off


def test_every_route_is_in_the_access_map_and_the_map_names_only_routes(site: Site) -> None:
    routes = set(route_keys(create_app(site).routes))
    assert ("GET", "/dicom-web/studies/{study}/series/{series}/instances/{instance}") in routes  # the Mount is walked
    assert sorted(routes - set(ACCESS)) == [], "routes missing from web/access.py (refused to everyone)"
    assert sorted(set(ACCESS) - routes) == [], "web/access.py names routes that do not exist"
    assert {key for key, roles in ACCESS.items() if roles is PUBLIC} == PUBLIC_ROUTES


def _example(template: str) -> str:
    """A concrete path for a route template: ids 1, UIDs 1.2.3, the chart png."""
    path = re.sub(r"\{[a-z_]+:int\}", "1", template)
    path = path.replace("{chart}.{format:str}", "chart.png").replace("{path}", "twinpacs.css")
    return re.sub(r"\{[a-z_]+\}", "1.2.3", path)


def test_anonymous_requests_are_refused_everywhere_but_health_and_login(served: ServedApp, site: Site) -> None:
    with httpx.Client(base_url=served.url, follow_redirects=False) as client:
        for method, template in sorted(route_keys(create_app(site).routes)):
            path = _example(template)
            response = client.request(method, path)
            if (method, template) in PUBLIC_ROUTES:
                assert response.status_code != 401, (method, path)
                continue
            if path.startswith(("/api/", "/dicom-web", "/metrics")):
                assert response.status_code == 401, (method, path, response.status_code)
                assert response.json()["status"] == 401 and response.headers["www-authenticate"].startswith("Bearer")
            else:  # a page: to the login form, and back here afterwards
                assert response.status_code == 303, (method, path, response.status_code)
                assert response.headers["location"].startswith("/login?next=")
        assert client.get("/static/twinpacs.css").status_code == 200
        assert client.get("/healthz").json()["status"] == "ok"
        assert client.get("/no/such/page").status_code == 303  # nothing is told about what exists
        assert client.get("/api/no-such-thing").status_code == 401
