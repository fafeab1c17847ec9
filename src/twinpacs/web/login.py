"""Signing in and out of the pages:

    GET  /login    the form (public; its stylesheet too)
    POST /login    name, password, csrf_token, next -> 303 to `next` with the session cookie
    POST /logout   csrf_token -> 303 to /login, the session ended on the server

The login form's CSRF token is a double-submit cookie (there is no session yet); attempts are
limited per client address and per user name (429 with Retry-After). Every login, refused or
not, and every logout goes to the access trail; no password is ever logged."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..core.access_trail import AccessEntry, Action, Outcome
from ..core.accounts import OIDC_USER_PREFIX, new_secret, same
from ..core.principal import Principal
from .auth import CSRF_FIELD, MAX_FORM_BYTES, SESSION_COOKIE, Guard, client_address
from .page_render import templates

if TYPE_CHECKING:  # oidc.py builds on this module
    from .oidc import OidcClient

LOGIN_COOKIE = "twinpacs_login"  # the login form's CSRF token (double submit)


def _guard(request: Request) -> Guard:
    return request.app.state.guard


def _next(value: str) -> str:
    """Where to go after the login: a path on this site only (never //host or a URL)."""
    return value if value.startswith("/") and not value.startswith(("//", "/\\")) else "/"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or _guard(request).cookie_secure


def _form(request: Request, next_path: str, name: str = "", error: str = "", status_code: int = 200,
                headers: dict[str, str] | None = None) -> Response:
    token = new_secret()
    response = templates.TemplateResponse(request, "login.html", {
        "site_name": request.app.state.site.name, "name": name, "error": error, "csrf": token,
        "next": _next(next_path), "oidc": request.app.state.oidc,
    }, status_code=status_code, headers=headers)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request), path="/login")
    return response


async def login_page(request: Request) -> Response:
    if request.state.principal.kind == "user":
        return RedirectResponse(_next(request.query_params.get("next", "")), status_code=303)
    return _form(request, request.query_params.get("next", ""))


async def _read_form(request: Request) -> dict[str, str] | None:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


async def login(request: Request) -> Response:
    guard = _guard(request)
    form = await _read_form(request)
    if form is None:
        return _form(request, "", error="The form was too large.", status_code=413)
    name = form.get("name", "").strip()
    next_path = form.get("next", "")
    address = client_address(request.scope)
    if not same(form.get(CSRF_FIELD, ""), request.cookies.get(LOGIN_COOKIE, "")) or not form.get(CSRF_FIELD):
        return _form(request, next_path, name, "The form had expired: please sign in again.", 403)
    wait = await run_in_threadpool(guard.login_limit.hit, f"address:{address}", f"name:{name.lower()}")
    if wait:
        _record(request, Principal(name or "anonymous", "anonymous", "user", address), "login", "refused",
                "too many attempts")
        return _form(request, next_path, name, f"Too many attempts: wait {wait:.0f} s and try again.", 429,
                     {"Retry-After": str(int(wait + 0.999))})
    account = await run_in_threadpool(guard.accounts.login, name, form.get("password", ""))
    if account is None:
        _record(request, Principal(name or "anonymous", "anonymous", "user", address), "login", "refused",
                "wrong name or password, or the account is disabled")
        return _form(request, next_path, name, "Wrong name or password (or the account is disabled).", 401)
    session_id, _ = await run_in_threadpool(guard.accounts.open_session, account)
    _record(request, Principal(account.name, account.role, "user", address), "login", "success", "")
    response = RedirectResponse(_next(next_path), status_code=303)
    response.set_cookie(SESSION_COOKIE, session_id, max_age=guard.session_seconds, httponly=True, samesite="lax",
                        secure=_secure(request), path="/")
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


async def logout(request: Request) -> Response:
    """Ends the session here; an OpenID Connect user is then sent to sign out at the provider too
    (else the next "Sign in with" would let them straight back in without a password)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    principal: Principal = request.state.principal
    if session_id:
        await run_in_threadpool(_guard(request).accounts.end_session, session_id)
        _record(request, principal, "logout", "success", "")
    provider: OidcClient | None = request.app.state.oidc
    at_provider = None
    if provider is not None and principal.name.startswith(OIDC_USER_PREFIX):
        at_provider = await run_in_threadpool(provider.logout_url, request)
    response = RedirectResponse(at_provider or "/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request))
    return response


def _record(request: Request, principal: Principal, action: Action, outcome: Outcome, detail: str) -> None:
    request.app.state.site.access_trail.record(AccessEntry(principal, action, outcome, "http", detail=detail))


routes: list[BaseRoute] = [
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
