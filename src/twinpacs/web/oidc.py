"""Signing in with the hospital's OpenID Connect provider (security.oidc; off while its issuer is empty):

    GET /login/oidc           -> 303 to the provider (authorization code, PKCE S256, state, nonce)
    GET /login/oidc/callback  code, state -> the ID token verified, the role mapped -> 303 to `next`
                              with the same session cookie as the password login
    POST /logout              (web/login.py) of such a session -> 303 to the provider's
                              end_session_endpoint, which signs the user out there too and sends
                              the browser back to /login (OpenID Connect RP-Initiated Logout 1.0)

The state, nonce and PKCE verifier travel in a short-lived HttpOnly cookie (SameSite=Lax: the
provider's redirect back is a top-level navigation from another site). The ID token's signature is
checked against the provider's JWKS (from its discovery document, both cached; the JWKS fetched
again once for an unknown key id: key rotation), and its iss, aud, exp and nonce. A user name or role
claim the ID token lacks is asked of the provider's userinfo endpoint (whose answer must name the
same subject), as providers that keep groups out of the ID token require. The user becomes
the twinpacs account oidc:NAME with the role the provider gives now (core.accounts.Accounts.external).
Every sign-in, refused or not, goes to the access trail; a provider that fails gives a 502 page."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..config_access import OidcSettings
from ..core.accounts import OIDC_USER_PREFIX, new_secret, same
from ..core.principal import Principal
from .auth import SESSION_COOKIE, client_address
from .login import _form, _guard, _next, _record, _secure

CALLBACK_PATH = "/login/oidc/callback"
FLOW_COOKIE = "twinpacs_oidc"  # state, nonce, PKCE verifier and `next` of one sign-in
FLOW_SECONDS = 600
CACHE_SECONDS = 3600.0
# Asymmetric signatures only: never "none", and no HS* (that would make the client secret a signing key).
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]


class ProviderError(Exception):
    """The identity provider could not be reached or answered something unusable."""


class Refused(Exception):
    """The sign-in is refused (a bad token, an unmapped role...); the message is shown to the user."""


@dataclass(frozen=True)
class Tokens:
    id_token: str
    access_token: str  # "" when the provider gave none (then there is no userinfo to ask)


def _with_query(endpoint: str, query: dict[str, str]) -> str:
    """A provider's endpoint with our parameters added (it may carry a query of its own)."""
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(query)}"


@dataclass
class OidcClient:
    """One provider: its discovery document and JWKS, fetched with a timeout and cached."""

    settings: OidcSettings
    _discovery: dict[str, Any] | None = None
    _keys: KeySet | None = None
    _fetched: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def display_name(self) -> str:
        return urlparse(self.settings.issuer).hostname or self.settings.issuer

    def _get(self, url: str) -> dict[str, Any]:
        try:
            answer = httpx.get(url, timeout=self.settings.timeout_s, follow_redirects=False)
            answer.raise_for_status()
            document = answer.json()
        except (httpx.HTTPError, ValueError) as e:
            raise ProviderError(f"{url}: {e}") from e
        if not isinstance(document, dict):
            raise ProviderError(f"{url}: not a JSON object")
        return document

    def discovery(self) -> dict[str, Any]:
        with self._lock:
            if self._discovery is None or time.monotonic() - self._fetched > CACHE_SECONDS:
                document = self._get(f"{self.settings.issuer.rstrip('/')}/.well-known/openid-configuration")
                missing = {"authorization_endpoint", "token_endpoint", "jwks_uri"} - document.keys()
                if missing or document.get("issuer") != self.settings.issuer:
                    raise ProviderError(f"the discovery document lacks {sorted(missing)} or names another issuer")
                self._discovery, self._keys, self._fetched = document, None, time.monotonic()
            return self._discovery

    def keys(self, refresh: bool = False) -> KeySet:
        jwks_uri = self.discovery()["jwks_uri"]
        with self._lock:
            if self._keys is None or refresh:
                try:
                    self._keys = KeySet.import_key_set(self._get(jwks_uri))  # type: ignore[arg-type]
                except (JoseError, ValueError, KeyError, TypeError) as e:
                    raise ProviderError(f"{jwks_uri}: unusable key set ({e})") from e
            return self._keys

    def authorize_url(self, redirect_uri: str, state: str, nonce: str, verifier: str) -> str:
        query = {"response_type": "code", "client_id": self.settings.client_id, "redirect_uri": redirect_uri,
                 "scope": " ".join(self.settings.scopes), "state": state, "nonce": nonce,
                 "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256"}
        return _with_query(self.discovery()["authorization_endpoint"], query)

    def tokens(self, code: str, redirect_uri: str, verifier: str) -> Tokens:
        """Exchanges the code for tokens at the token endpoint; the raw ID token and access token."""
        document = self.discovery()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": verifier}
        secret = self.settings.client_secret.get_secret_value()
        methods = document.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
        auth: tuple[str, str] | None = None
        if "client_secret_basic" in methods or "client_secret_post" not in methods:
            auth = (self.settings.client_id, secret)
        else:
            form |= {"client_id": self.settings.client_id, "client_secret": secret}
        try:
            answer = httpx.post(document["token_endpoint"], data=form, auth=auth, timeout=self.settings.timeout_s)
        except httpx.HTTPError as e:
            raise ProviderError(f"token endpoint: {e}") from e
        if answer.status_code == 400:  # invalid_grant: a code used twice, too old, or not ours
            raise Refused("The identity provider refused the sign-in code: please sign in again.")
        try:
            answer.raise_for_status()
            tokens = answer.json()
            id_token, access_token = tokens["id_token"], tokens.get("access_token", "")
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise ProviderError(f"token endpoint: {e}") from e
        if not isinstance(id_token, str) or not isinstance(access_token, str):
            raise ProviderError("token endpoint: id_token or access_token is not a string")
        return Tokens(id_token, access_token)

    def verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims once its signature, iss, aud, exp and nonce are right."""
        keys = self.keys()
        try:
            kid = jws.extract_compact(id_token.encode("ascii")).headers().get("kid")
            if kid and kid not in {k.kid for k in keys.keys}:
                keys = self.keys(refresh=True)
            token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self.settings.issuer},
                aud={"essential": True, "value": self.settings.client_id},
                exp={"essential": True}, nonce={"essential": True, "value": nonce}, sub={"essential": True},
            ).validate(token.claims)
        except (JoseError, ValueError) as e:
            raise Refused(f"The identity provider's ID token is not valid ({type(e).__name__}).") from e
        return token.claims

    def with_userinfo(self, claims: dict[str, Any], access_token: str) -> dict[str, Any]:
        """The verified ID token's claims, completed from the userinfo endpoint when the user name
        or role claim is missing and the provider has one; the ID token's own claims win."""
        wanted = {self.settings.username_claim, self.settings.role_claim}
        endpoint = self.discovery().get("userinfo_endpoint")
        if wanted <= claims.keys() or not endpoint or not access_token:
            return claims
        try:
            answer = httpx.get(endpoint, headers={"Authorization": f"Bearer {access_token}"},
                               timeout=self.settings.timeout_s, follow_redirects=False)
            answer.raise_for_status()
            info = answer.json()  # a signed (application/jwt) answer fails here: not supported
        except (httpx.HTTPError, ValueError) as e:
            raise ProviderError(f"userinfo endpoint: {e}") from e
        if not isinstance(info, dict):
            raise ProviderError("userinfo endpoint: not a JSON object")
        if info.get("sub") != claims["sub"]:  # OIDC Core 5.3.4: else it may be another user's answer
            raise Refused("The identity provider's userinfo is about another user: please sign in again.")
        return {**info, **claims}

    def redirect_uri(self, request: Request) -> str:
        return self.settings.redirect_url or f"{str(request.base_url).rstrip('/')}{CALLBACK_PATH}"

    def logout_url(self, request: Request) -> str | None:
        """Where the browser signs out at the provider too (RP-Initiated Logout 1.0), to come back
        to this site's login page (beside the callback: behind the same proxy); None when the
        provider has no end_session_endpoint or cannot be reached (the local logout stands)."""
        post_logout_redirect_uri = self.redirect_uri(request).removesuffix(CALLBACK_PATH) + "/login"
        try:
            endpoint = self.discovery().get("end_session_endpoint")
        except ProviderError:
            return None
        if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
            return None
        return _with_query(endpoint, {"client_id": self.settings.client_id,
                                      "post_logout_redirect_uri": post_logout_redirect_uri})

    def account_of(self, claims: dict[str, Any]) -> tuple[str, str]:
        """The twinpacs user name and role of verified claims."""
        name = claims.get(self.settings.username_claim)
        if not isinstance(name, str) or not name:
            raise Refused(f"The ID token has no {self.settings.username_claim} claim.")
        values = claims.get(self.settings.role_claim, [])
        held = {values} if isinstance(values, str) else {v for v in values if isinstance(v, str)} \
            if isinstance(values, list) else set()
        role = next((role for value, role in self.settings.role_map.items() if value in held), None)
        if role is None:
            raise Refused(f"{name} has no role in twinpacs: ask the administrator to map one of your "
                          f"{self.settings.role_claim} to a twinpacs role.")
        return f"{OIDC_USER_PREFIX}{name}", role


def _client(request: Request) -> OidcClient | None:
    client: OidcClient | None = request.app.state.oidc
    return client


def _refused(request: Request, message: str, status_code: int) -> Response:
    response = _form(request, "", error=message, status_code=status_code)
    response.delete_cookie(FLOW_COOKIE, path="/login/oidc")
    return response


async def start(request: Request) -> Response:
    client = _client(request)
    if client is None:
        return PlainTextResponse("OpenID Connect sign-in is not configured.", status_code=404)
    flow = {"state": new_secret(), "nonce": new_secret(), "verifier": new_secret(),
            "next": _next(request.query_params.get("next", ""))}
    try:
        url = await run_in_threadpool(client.authorize_url, client.redirect_uri(request), flow["state"],
                                      flow["nonce"], flow["verifier"])
    except ProviderError:
        return _refused(request, f"{client.display_name} cannot be reached: sign in with a password, or try later.",
                        502)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(FLOW_COOKIE, urlencode(flow), max_age=FLOW_SECONDS, httponly=True, samesite="lax",
                        secure=_secure(request), path="/login/oidc")
    return response


async def callback(request: Request) -> Response:
    client = _client(request)
    if client is None:
        return PlainTextResponse("OpenID Connect sign-in is not configured.", status_code=404)
    address = client_address(request.scope)
    anonymous = Principal("oidc", "anonymous", "user", address)
    flow = dict(parse_qsl(request.cookies.get(FLOW_COOKIE, "")))
    params = request.query_params
    if not flow.get("state") or not same(params.get("state", ""), flow["state"]):
        _record(request, anonymous, "login", "refused", "OpenID Connect: state missing or wrong")
        return _refused(request, "The sign-in had expired or was not started here: please sign in again.", 403)
    if "error" in params or "code" not in params:
        detail = params.get("error", "no code")
        _record(request, anonymous, "login", "refused", f"OpenID Connect: the provider answered {detail}")
        return _refused(request, f"{client.display_name} did not sign you in ({detail}).", 403)
    try:
        tokens = await run_in_threadpool(client.tokens, params["code"], client.redirect_uri(request),
                                         flow.get("verifier", ""))
        claims = await run_in_threadpool(client.verify, tokens.id_token, flow.get("nonce", ""))
        claims = await run_in_threadpool(client.with_userinfo, claims, tokens.access_token)
        name, role = client.account_of(claims)
    except ProviderError as e:
        _record(request, anonymous, "login", "refused", f"OpenID Connect: provider error: {e}")
        return _refused(request, f"{client.display_name} did not answer properly: sign in with a password, "
                        "or try later.", 502)
    except Refused as e:
        _record(request, anonymous, "login", "refused", f"OpenID Connect: {e}")
        return _refused(request, str(e), 403)
    guard = _guard(request)
    account = await run_in_threadpool(guard.accounts.external, name, role)
    if account is None:
        _record(request, Principal(name, role, "user", address), "login", "refused",
                "OpenID Connect: the account is disabled")
        return _refused(request, "This account is disabled.", 403)
    session_id, _ = await run_in_threadpool(guard.accounts.open_session, account)
    _record(request, Principal(account.name, account.role, "user", address), "login", "success", "OpenID Connect")
    response = RedirectResponse(_next(flow.get("next", "")), status_code=303)
    response.set_cookie(SESSION_COOKIE, session_id, max_age=guard.session_seconds, httponly=True, samesite="lax",
                        secure=_secure(request), path="/")
    response.delete_cookie(FLOW_COOKIE, path="/login/oidc")
    return response


def make_client(settings: OidcSettings) -> OidcClient | None:
    return OidcClient(settings) if settings.enabled else None


routes: list[BaseRoute] = [
    Route("/login/oidc", start, methods=["GET"]),
    Route(CALLBACK_PATH, callback, methods=["GET"]),
]
