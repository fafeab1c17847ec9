"""Records HTTP accesses to patient data in the access trail, once each response is sent.

Which requests count, and as what, is the RULES table below (method + path). The middleware
sits OUTSIDE the authentication middleware: a request it refuses (401/403) never reaches
anything inside it, and refusals must be recorded too. It still knows who asked: it reads
request.state.principal (set by the authentication middleware on the shared scope) after the
response, and records Principal("anonymous", ...) with the client address when none was set.

Rare actions with an HTTP route (correction, unmerge, failover, role change, deletion) are
recorded by their handlers, which know the patient and study; here only their refusals and
failures. A handler may `note` the patient or study it found, for the entry of its request.

Retrievals (WADO-RS, frames, rendered, metadata, bulk data) are coalesced: the viewer fetches
one request per image, so one entry stands for every retrieval of a study by the same principal
from the same address with the same outcome within COALESCE_S of that entry. Every other
request leaves exactly one entry."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.access_trail import AccessEntry, Action, Outcome
from ..core.principal import Principal

log = logging.getLogger("twinpacs.access_trail")

COALESCE_S = 60.0
_NOTE = "access_trail_note"  # the key a handler's note is kept under, in the request's state
_DETAIL_MAX = 1000


@dataclass(frozen=True)
class Rule:
    method: str
    path: re.Pattern[str]  # a named group `study` takes the Study Instance UID from the path
    action: Action
    by_handler: bool = False  # the handler records success; the middleware refusals and failures


def _rule(method: str, path: str, action: Action, by_handler: bool = False) -> Rule:
    return Rule(method, re.compile(f"^{path}$"), action, by_handler)


_UID = r"(?P<study>[^/]+)"
# First match wins: the QIDO-RS searches under a study come before the study's retrievals.
RULES = (
    _rule("GET", r"/dicom-web/(studies|series|instances)", "query"),
    _rule("GET", rf"/dicom-web/studies/{_UID}/(series|instances)", "query"),
    _rule("GET", rf"/dicom-web/studies/{_UID}/series/[^/]+/instances", "query"),
    _rule("GET", rf"/dicom-web/studies/{_UID}(/.*)?", "retrieve"),
    _rule("POST", rf"/dicom-web/studies(/{_UID})?", "store"),
    _rule("GET", r"/", "query"),  # the worklist page: a list of studies and patients
    _rule("GET", rf"/studies/{_UID}", "view"),
    _rule("GET", rf"/viewer/{_UID}", "view"),
    _rule("GET", rf"/api/studies/{_UID}/referral", "view"),
    _rule("GET", r"/api/(orders|reconciliation|merges)", "query"),
    _rule("GET", r"/admin/reconciliation", "query"),
    _rule("POST", r"/api/reconciliation/apply", "correction", by_handler=True),
    _rule("POST", r"/api/merges/[0-9]+/reverse", "merge", by_handler=True),
    _rule("POST", r"/api/failover/run", "failover", by_handler=True),
    _rule("POST", r"/api/roles", "failover", by_handler=True),
    _rule("DELETE", rf"/api/selftest/studies/{_UID}", "deletion", by_handler=True),
    _rule("GET", r"/api/access-trail", "query"),  # the trail names patients: reading it is an access too
)
# QIDO-RS query keys naming the patient, by keyword and by tag
_PATIENT_KEYS = ("PatientID", "00100020")


def classify(method: str, path: str) -> tuple[Rule, str] | None:
    """The rule a request falls under, with the study UID its path names ("" if none)."""
    method = "GET" if method == "HEAD" else method  # Starlette answers HEAD with the GET handler
    for rule in RULES:
        if rule.method == method and (match := rule.path.match(path)):
            return rule, match.groupdict().get("study") or ""
    return None


def note(request: Request, patient_id: str = "", study_uid: str = "") -> None:
    """Let the entry of this request name the patient (or study) the handler found."""
    found = request.scope.setdefault("state", {}).setdefault(_NOTE, {})
    if patient_id:
        found["patient_id"] = patient_id
    if study_uid:
        found["study_uid"] = study_uid


def principal_of(request: Request) -> Principal:
    """Who asked: as authentication found, else anonymous at the client's address."""
    found: Principal | None = request.scope.get("state", {}).get("principal")
    return found or Principal("anonymous", "anonymous", "anonymous", request.client.host if request.client else "")


def record_done(request: Request, action: Action, patient_id: str = "", study_uid: str = "",
                detail: str = "") -> None:
    """A handler's entry for a rare action it completed (a by_handler rule), committed at once."""
    request.app.state.site.access_trail.record_now(AccessEntry(
        principal_of(request), action, "success", "http", patient_id, study_uid,
        detail or f"{request.method} {request.url.path}"))


def outcome_of(status: int, location: str = "") -> Outcome:
    """401/403, or a page's redirect to the login form, is a refusal."""
    if status in (401, 403) or (300 <= status < 400 and location.startswith("/login")):
        return "refused"
    return "success" if status < 400 else "failed"


class TrailMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._recent: dict[tuple[str, ...], float] = {}  # coalesced retrievals: key -> first entry's time

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = classify(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})  # one dict for every layer: the principal set inside is seen here
        status, location = 500, ""

        async def tracking_send(message: Message) -> None:
            nonlocal status, location
            if message["type"] == "http.response.start":
                status = message["status"]
                location = dict(message.get("headers", [])).get(b"location", b"").decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            rule, study_uid = found
            outcome = outcome_of(status, location)
            if not (rule.by_handler and outcome == "success"):
                try:
                    self._record(scope, rule, study_uid, outcome)
                except Exception:  # the trail never breaks the response it records
                    log.exception("access trail: %s %s not recorded", scope["method"], scope["path"])

    def _record(self, scope: Scope, rule: Rule, study_uid: str, outcome: Outcome) -> None:
        request = Request(scope)
        principal = principal_of(request)
        noted: dict[str, str] = scope["state"].get(_NOTE, {})
        patient_id = noted.get("patient_id") or next(
            (request.query_params[k] for k in _PATIENT_KEYS if request.query_params.get(k)), "")
        study_uid = noted.get("study_uid") or study_uid or request.query_params.get("StudyInstanceUID", "")
        if rule.action == "retrieve" and self._coalesced((principal.name, principal.address, study_uid, outcome)):
            return
        query = scope.get("query_string", b"").decode("latin-1")
        detail = f"{scope['method']} {scope['path']}" + (f"?{query}" if query else "")
        scope["app"].state.site.access_trail.record(AccessEntry(
            principal, rule.action, outcome, "http", patient_id, study_uid, detail[:_DETAIL_MAX]))

    def _coalesced(self, key: tuple[str, ...]) -> bool:
        """Whether an entry recorded within COALESCE_S already stands for this retrieval."""
        now = time.monotonic()
        if len(self._recent) > 10_000:  # forget expired keys now and then
            self._recent = {k: t for k, t in self._recent.items() if now - t < COALESCE_S}
        first = self._recent.get(key)
        if first is not None and now - first < COALESCE_S:
            return True
        self._recent[key] = now
        return False
