"""THE map of who may call what over HTTP (issue 9): every route, by method and path template,
to the roles that may use it. A route missing here is refused to everyone (default deny), and
tests/security/test_routes.py fails when a route of create_app() is not listed.

Roles: radiologists and radiographers read images and orders; radiographers also store (STOW-RS)
and reconcile studies with orders; administrators do everything; `service` is a machine: a peer
site replicating and asking for hashes, sync status and role changes, a viewer or script reading
and storing images, a metrics scraper. Any signed-in clinician may report an incident
(POST /api/incidents, with the taxonomy and classification help); reading and editing the
register stays with administrators."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Scope

from ..core.accounts import ROLES

Roles = frozenset[str]

PUBLIC: Roles = frozenset({"public"})  # no sign-in needed: health, the login page and its stylesheet
SIGNED_IN: Roles = frozenset(ROLES)
ADMIN: Roles = frozenset({"administrator"})
READ: Roles = frozenset({"radiologist", "radiographer", "administrator"})
READ_MACHINE: Roles = READ | {"service"}  # DICOMweb and figures: viewers and peers read too
STORE: Roles = frozenset({"radiographer", "administrator", "service"})
PEER: Roles = frozenset({"service", "administrator"})
RECONCILE: Roles = frozenset({"radiographer", "administrator"})

_INSTANCE = "/dicom-web/studies/{study}/series/{series}/instances/{instance}"

# (method, path template) -> roles. HEAD is treated as GET.
ACCESS: dict[tuple[str, str], Roles] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("GET", "/login/oidc"): PUBLIC,  # OpenID Connect sign-in (404 while security.oidc is off)
    ("GET", "/login/oidc/callback"): PUBLIC,
    ("GET", "/static/{path}"): PUBLIC,
    ("POST", "/logout"): SIGNED_IN,
    # pages
    ("GET", "/"): READ,
    ("GET", "/studies/{uid}"): READ,
    ("GET", "/viewer/{study}"): READ,
    ("GET", "/viewer-assets/{path}"): READ,
    ("GET", "/admin"): ADMIN,
    ("GET", "/admin/sync"): ADMIN,
    ("GET", "/admin/failover"): ADMIN,
    ("GET", "/admin/notices"): ADMIN,
    ("POST", "/admin/notices"): ADMIN,
    ("POST", "/admin/notices/{notice_id:int}/clear"): ADMIN,
    ("GET", "/admin/config"): ADMIN,
    ("GET", "/admin/config/{start_id:int}"): ADMIN,
    ("GET", "/admin/selftest"): ADMIN,
    ("GET", "/admin/reconciliation"): RECONCILE,
    ("GET", "/incidents/new"): READ,
    ("POST", "/incidents/new"): READ,
    ("GET", "/admin/incidents"): ADMIN,
    ("GET", "/admin/incidents/{incident_id:int}"): ADMIN,
    ("POST", "/admin/incidents/{incident_id:int}/analysis"): ADMIN,
    ("POST", "/admin/incidents/drafts/{draft_id:int}/take-over"): ADMIN,
    # figures and metrics
    ("GET", "/api/figures"): READ_MACHINE,
    ("GET", "/metrics"): PEER,
    # sync, failover, roles: peers ask each other during a failover
    ("GET", "/api/sync"): PEER,
    ("GET", "/api/failover/plan"): ADMIN,
    ("POST", "/api/failover/run"): ADMIN,
    ("GET", "/api/roles"): PEER,
    ("POST", "/api/roles"): PEER,
    # replication between the sites
    ("POST", "/api/replication/hashes"): PEER,
    ("GET", "/api/replication/queue"): PEER,
    ("POST", "/api/replication/retry"): ADMIN,
    ("POST", "/api/replication/ris"): PEER,
    ("GET", "/api/replication/ris"): PEER,
    # notices, operator log, incident drafts
    ("GET", "/api/notices"): READ_MACHINE,
    ("POST", "/api/notices"): ADMIN,
    ("POST", "/api/notices/{notice_id:int}/clear"): ADMIN,
    ("GET", "/api/operator-log"): ADMIN,
    ("GET", "/api/incidents/drafts"): ADMIN,
    ("POST", "/api/incidents/drafts/{draft_id:int}/review"): ADMIN,
    # the incident register: reported by anyone signed in, kept by administrators
    ("GET", "/api/incidents"): ADMIN,
    ("POST", "/api/incidents"): READ,
    ("GET", "/api/incidents/{incident_id:int}"): ADMIN,
    ("PATCH", "/api/incidents/{incident_id:int}"): ADMIN,
    ("GET", "/api/incidents/{incident_id:int}/strategies"): ADMIN,
    ("GET", "/api/taxonomy"): READ,
    ("POST", "/api/incidents/suggest"): READ,
    ("GET", "/api/incidents/report"): ADMIN,
    ("GET", "/api/incidents/report.csv"): ADMIN,
    ("GET", "/api/incidents/report/{chart}.{format:str}"): ADMIN,
    # audit (a site against its peer), configuration, self-test
    ("GET", "/api/audit/digest"): PEER,
    ("GET", "/api/audit/instances"): PEER,
    ("GET", "/api/audit/deep"): PEER,
    ("GET", "/api/access-trail"): ADMIN,
    ("GET", "/api/config"): ADMIN,
    ("GET", "/api/config/history"): ADMIN,
    ("GET", "/api/config/history/{start_id:int}"): ADMIN,
    ("GET", "/api/site"): ADMIN,
    ("GET", "/api/selftest/studies/{study}"): ADMIN,
    ("DELETE", "/api/selftest/studies/{study}"): ADMIN,
    ("POST", "/api/selftest/runs"): ADMIN,
    ("GET", "/api/selftest/runs/latest"): ADMIN,
    # RIS: orders and referrals are read by clinicians; reconciliation and merges change patients
    ("GET", "/api/studies/{study}/referral"): READ,
    ("GET", "/api/orders"): READ,
    ("GET", "/api/reconciliation"): RECONCILE,
    ("POST", "/api/reconciliation/apply"): RECONCILE,
    ("GET", "/api/merges"): RECONCILE,
    ("POST", "/api/merges/{merge_id:int}/reverse"): RECONCILE,
    ("GET", "/api/prefetch"): READ,
    # DICOMweb: QIDO-RS and WADO-RS read, STOW-RS stores
    ("POST", "/dicom-web/studies"): STORE,
    ("POST", "/dicom-web/studies/{study}"): STORE,
    ("GET", "/dicom-web/studies"): READ_MACHINE,
    ("GET", "/dicom-web/series"): READ_MACHINE,
    ("GET", "/dicom-web/instances"): READ_MACHINE,
    ("GET", "/dicom-web/studies/{study}/series"): READ_MACHINE,
    ("GET", "/dicom-web/studies/{study}/instances"): READ_MACHINE,
    ("GET", "/dicom-web/studies/{study}/series/{series}/instances"): READ_MACHINE,
    ("GET", "/dicom-web/studies/{study}"): READ_MACHINE,
    ("GET", "/dicom-web/studies/{study}/series/{series}"): READ_MACHINE,
    ("GET", _INSTANCE): READ_MACHINE,
    ("GET", "/dicom-web/studies/{study}/metadata"): READ_MACHINE,
    ("GET", "/dicom-web/studies/{study}/series/{series}/metadata"): READ_MACHINE,
    ("GET", _INSTANCE + "/metadata"): READ_MACHINE,
    ("GET", _INSTANCE + "/bulkdata/{tag}"): READ_MACHINE,
    ("GET", _INSTANCE + "/frames/{frames}"): READ_MACHINE,
    ("GET", _INSTANCE + "/rendered"): READ_MACHINE,
    ("GET", _INSTANCE + "/frames/{frames}/rendered"): READ_MACHINE,
}


def route_keys(routes: Sequence[BaseRoute], prefix: str = "") -> list[tuple[str, str]]:
    """Every (method, path template) the routes answer; a static Mount as "{path}" below it."""
    keys: list[tuple[str, str]] = []
    for route in routes:
        if isinstance(route, Mount):
            if route.routes:
                keys += route_keys(route.routes, prefix + route.path)
            else:
                keys.append(("GET", f"{prefix}{route.path}/{{path}}"))
        elif isinstance(route, Route):
            keys += [(m, prefix + route.path) for m in sorted(route.methods or {"GET"}) if m != "HEAD"]
    return keys


def match(routes: Sequence[BaseRoute], scope: Scope, prefix: str = "") -> tuple[str, str] | None:
    """The (method, path template) the request will be routed to; None when no route takes it
    (the router answers 404 or 405 then)."""
    method = "GET" if scope["method"] == "HEAD" else scope["method"]
    for route in routes:
        found, child = route.matches(scope)
        if found != Match.FULL:
            continue
        if isinstance(route, Mount):
            if not route.routes:
                return (method, f"{prefix}{route.path}/{{path}}")
            return match(route.routes, {**scope, **child}, prefix + route.path)
        if isinstance(route, Route):
            return (method, prefix + route.path)
    return None


def roles_for(key: tuple[str, str] | None) -> Roles:
    """The roles that may use a route; none for a route not in the map (default deny)."""
    return ACCESS.get(key, frozenset()) if key else frozenset()


def may_open(role: str, path: str) -> bool:
    """May `role` GET `path` (a page of the navigation)? For showing only the links that work."""
    roles = ACCESS.get(("GET", path), frozenset())
    return roles is PUBLIC or role in roles
