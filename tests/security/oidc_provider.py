"""A minimal OpenID Connect provider for the tests, served by a real uvicorn on 127.0.0.1: discovery,
JWKS (an RSA key made at start), an authorize endpoint that signs the user in at once and redirects
back with a code, a token endpoint (client_secret_basic, PKCE S256 checked) issuing a signed ID
token and an access token, a userinfo endpoint for that access token, and an end-session endpoint
(RP-Initiated Logout) that records its calls. `claims` are the next user's ID token claims,
`userinfo` what the userinfo endpoint adds; `tamper`, `nonce` and `userinfo_sub` spoil the next
answers on purpose."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlencode

import uvicorn
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CLIENT_ID = "twinpacs-test"
CLIENT_SECRET = "provider-secret-" + "s" * 16


class Provider:
    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig"}, private=True)
        self.claims: dict[str, Any] = {}
        self.tamper = False  # the next ID token gets a broken signature
        self.nonce: str | None = None  # the next ID token carries this nonce instead of the one asked
        self.userinfo: dict[str, Any] = {}
        self.userinfo_sub: str | None = None  # the userinfo answer names this subject instead
        self.codes: dict[str, dict[str, str]] = {}
        self.access_tokens: dict[str, str] = {}  # access token -> subject
        self.token_requests = self.userinfo_requests = 0
        self.logouts: list[dict[str, str]] = []
        app = Starlette(routes=[
            Route("/.well-known/openid-configuration", self.discovery),
            Route("/jwks", self.jwks),
            Route("/authorize", self.authorize),
            Route("/token", self.token, methods=["POST"]),
            Route("/userinfo", self.userinfo_endpoint),
            Route("/logout", self.end_session),
        ])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                                    access_log=False, lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the test provider did not start"
            time.sleep(0.01)
        self.issuer = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    async def discovery(self, request: Request) -> Response:
        return JSONResponse({
            "issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
            "userinfo_endpoint": f"{self.issuer}/userinfo", "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code"], "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
        })

    async def jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code" \
                or q.get("code_challenge_method") != "S256" or "openid" not in q.get("scope", "").split():
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"nonce": q["nonce"], "challenge": q["code_challenge"], "redirect_uri": q["redirect_uri"]}
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}", 302)

    async def token(self, request: Request) -> Response:
        self.token_requests += 1
        form = await request.form()
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {basic}":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        asked = self.codes.pop(str(form.get("code")), None)
        if asked is None or form.get("redirect_uri") != asked["redirect_uri"] \
                or create_s256_code_challenge(str(form.get("code_verifier"))) != asked["challenge"]:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 300, "sub": "subject-1",
                  "nonce": self.nonce or asked["nonce"], **self.claims}
        id_token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, self.key)
        if self.tamper:  # the claims changed after signing: a role raised on the way
            head, _, signature = id_token.split(".")
            body = base64.urlsafe_b64encode(json.dumps({**claims, "roles": ["pacs-admins"]}).encode())
            id_token = f"{head}.{body.decode().rstrip('=')}.{signature}"
        access_token = secrets.token_urlsafe(16)
        self.access_tokens[access_token] = claims["sub"]
        return JSONResponse({"access_token": access_token, "token_type": "Bearer", "id_token": id_token})

    async def userinfo_endpoint(self, request: Request) -> Response:
        self.userinfo_requests += 1
        subject = self.access_tokens.get(request.headers.get("authorization", "").removeprefix("Bearer "))
        if subject is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse({**self.userinfo, "sub": self.userinfo_sub or subject})

    async def end_session(self, request: Request) -> Response:
        self.logouts.append(dict(request.query_params))
        back = request.query_params.get("post_logout_redirect_uri")
        return RedirectResponse(back, 302) if back else JSONResponse({"signed_out": True})
