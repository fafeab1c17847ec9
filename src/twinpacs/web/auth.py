"""The HTTP door's guard (issue 9): who is asking, and may they.

Every request gets `request.state.principal` (core.principal.Principal, with the client
address) from, in this order: an `Authorization: Bearer` token (configuration tokens and
`twinpacs user token` tokens; a wrong one is refused, never downgraded to anonymous), the
session cookie of a login, or else anonymous (with security.anonymous_role, if one is set).
The route's roles come from web/access.py; what is not listed there is refused.

Refusals: 401 (not signed in) and 403 (signed in, wrong role) as the JSON error shape for the
API, DICOMweb and /metrics; a page sends the browser to /login instead, or shows a 403 page.
A POST (any unsafe method) authenticated by the cookie must carry the session's CSRF token:
in the X-CSRF-Token header, or as the csrf_token field of an urlencoded form."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import SecuritySettings
from ..core.accounts import ROLES, Accounts, ConfigToken, RateLimit, Session, same
from ..core.principal import Principal
from ..index.accounts import SqlAccountStore
from ..index.database import Database
from ..index.login_attempts import SqlLoginAttempts
from .access import PUBLIC, match, roles_for
from .errors import error_response
from .page_render import error_page

SESSION_COOKIE = "twinpacs_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MAX_FORM_BYTES = 64 * 1024  # the largest urlencoded form the guard reads (a notice is far smaller)
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_MACHINE_PREFIXES = ("/api/", "/dicom-web", "/metrics")


@dataclass
class Guard:
    """What the middleware and the login page share, kept on app.state.guard."""

    accounts: Accounts
    anonymous_role: str
    login_limit: RateLimit
    cookie_secure: bool
    session_seconds: int


def make_guard(security: SecuritySettings, db: Database, clock: Callable[[], datetime]) -> Guard:
    tokens = [ConfigToken(t.name, t.token.get_secret_value(), t.role) for t in security.api_tokens]
    accounts = Accounts(SqlAccountStore(db), clock, tokens, security.session_hours)
    limit = RateLimit(security.login_attempts_per_minute, SqlLoginAttempts(db), clock)
    return Guard(accounts, security.anonymous_role, limit,
                 security.cookie_secure, int(security.session_hours * 3600))


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


class Authenticate:
    """ASGI middleware (pure ASGI: a STOW-RS body streams through untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        web = scope["app"]
        guard: Guard = web.state.guard
        request = Request(scope)
        # A configuration token (peers, viewers, scripts: most machine requests) reads no index.
        principal, session = _configured(guard, request), None
        if principal is None:
            if "authorization" in request.headers or SESSION_COOKIE in request.cookies:
                principal, session = await run_in_threadpool(_identify, guard, request)  # reads the index
            else:
                principal, session = _identify(guard, request)
        state = scope.setdefault("state", {})
        state["principal"] = principal or Principal("anonymous", "anonymous", "anonymous", client_address(scope))
        state["csrf"] = session.csrf if session else ""
        if principal is None:
            await error_response(401, "the bearer token is not valid (unknown, or its user is disabled)",
                                 _challenge())(scope, receive, send)
            return
        key = match(web.routes, scope)
        roles = roles_for(key)
        if roles is not PUBLIC:
            refusal = await _refusal(request, principal, roles, known_route=key is not None)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
            if session is not None and scope["method"] not in _SAFE:
                checked = await _checked_csrf(request, session, receive)
                if checked is None:
                    await (await _forbidden(request, "the form or request lacks this session's CSRF token: reload the "
                                              "page and try again"))(scope, _no_body, send)
                    return
                receive = checked
        await self.app(scope, receive, send)


def _bearer_token(request: Request) -> str | None:
    """The token of an Authorization: Bearer header; "" for another scheme or an empty token."""
    authorization = request.headers.get("authorization")
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _configured(guard: Guard, request: Request) -> Principal | None:
    token = _bearer_token(request)
    return guard.accounts.configured(token, client_address(request.scope)) if token else None


def _identify(guard: Guard, request: Request) -> tuple[Principal | None, Session | None]:
    """The principal (None: a bearer token was given and is not valid) and the login session."""
    address = client_address(request.scope)
    token = _bearer_token(request)
    if token is not None:
        return (guard.accounts.bearer(token, address) if token else None), None
    cookie = request.cookies.get(SESSION_COOKIE)
    session = guard.accounts.session(cookie) if cookie else None
    if session is not None:
        return Principal(session.account.name, session.account.role, "user", address), session
    role = guard.anonymous_role or "anonymous"
    return Principal("anonymous", role, "anonymous", address), None


async def _refusal(request: Request, principal: Principal, roles: frozenset[str], known_route: bool) -> Response | None:
    if principal.role in roles or (not known_route and principal.role in ROLES):
        return None  # allowed; or no such route: the router answers 404/405 to someone signed in
    if principal.role not in ROLES:  # not signed in, and the door is not open to anonymous
        if _is_machine(request):
            return error_response(401, "sign in first: send Authorization: Bearer TOKEN", _challenge())
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    return await _forbidden(request, f"{principal.name} ({principal.role}) may not use {request.method} "
                               f"{request.url.path}")


async def _forbidden(request: Request, message: str) -> Response:
    if _is_machine(request):
        return error_response(403, message)
    return await error_page(request, 403, "Not allowed", message)


def _is_machine(request: Request) -> bool:
    return request.url.path.startswith(_MACHINE_PREFIXES)


def _challenge() -> dict[str, str]:
    return {"WWW-Authenticate": 'Bearer realm="twinpacs"'}


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _checked_csrf(request: Request, session: Session, receive: Receive) -> Receive | None:
    """`receive` for the app when the request carries the session's CSRF token, else None.
    A form is read here and handed on unchanged."""
    header = request.headers.get(CSRF_HEADER)
    if header is not None:
        return receive if same(header, session.csrf) else None
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return None
    body = bytearray()
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > MAX_FORM_BYTES:
            return None
        if not message.get("more_body", False):
            break
    sent = dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True)).get(CSRF_FIELD, "")
    if not same(sent, session.csrf):
        return None
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()  # the disconnect, when the client goes
        replayed = True
        return {"type": "http.request", "body": bytes(body), "more_body": False}
    return replay
