"""The configuration sections of access control (issue 9): the HTTP door's accounts, tokens and
sessions, and the limits on what one request may ask. Part of the one Settings (config.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from .config_base import Section
from .core.accounts import Role


class ApiToken(Section):
    name: str = Field(description="Who uses the token (a peer site, a viewer, a script); shown in the access trail.")
    token: SecretStr = Field(description="The token itself, at least 32 characters (e.g. from `openssl rand -hex 32`).")
    role: Role = Field(description="The role its requests act in: radiologist, radiographer, administrator or service.")

    @field_validator("token")
    @classmethod
    def _long(cls, v: SecretStr) -> SecretStr:
        if len(v.get_secret_value()) < 32:
            raise ValueError("an API token needs at least 32 characters")
        return v


class OidcSettings(Section):
    """Optional OpenID Connect sign-in for the pages (issue 9): the hospital's identity provider
    vouches for the user, a role claim gives the twinpacs role. Off while `issuer` is empty."""

    issuer: str = Field(
        "", description="The identity provider's issuer URL (its discovery document is "
        "ISSUER/.well-known/openid-configuration); empty (the default) turns OpenID Connect off.",
    )
    client_id: str = Field("", description="This site's client id at the identity provider.")
    client_secret: SecretStr = Field(
        SecretStr(""), description="This site's client secret (sent with client_secret_basic, or "
        "client_secret_post when the provider supports only that).",
    )
    scopes: list[str] = Field(
        default_factory=lambda: ["openid", "profile"], description="Scopes asked for; must include openid.")
    username_claim: str = Field(
        "preferred_username", description="ID token claim naming the user; the twinpacs user is oidc:VALUE.")
    role_claim: str = Field(
        "roles", description="ID token claim holding the user's roles or groups (a list or one string).")
    role_map: dict[str, Role] = Field(
        default_factory=dict, description="Identity provider role/group value -> twinpacs role; the first "
        "value of this map the user has wins. A user with none of them is refused.",
    )
    redirect_url: str = Field(
        "", description="The callback URL registered at the provider; empty: derived from the request "
        "(BASE/login/oidc/callback). Set it behind a proxy that changes the host or scheme. The post-logout "
        "redirect URL to register beside it is BASE/login.",
    )
    timeout_s: float = Field(10.0, gt=0, description="Seconds to wait for the identity provider's answers.")

    @field_validator("issuer", "redirect_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v and not v.startswith(("https://", "http://")):
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v  # kept as written: the ID token's iss must match it exactly (OIDC Core 3.1.3.7)

    @field_validator("scopes")
    @classmethod
    def _openid(cls, v: list[str]) -> list[str]:
        if "openid" not in v:
            raise ValueError("the scopes must include openid")
        return v

    @model_validator(mode="after")
    def _client(self) -> OidcSettings:
        if self.issuer and not self.client_id:
            raise ValueError("security.oidc.issuer is set: set client_id (and client_secret) too")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.issuer)


class SecuritySettings(Section):
    """Who may use the HTTP door (issue 9): accounts, roles, tokens, sessions."""

    anonymous_role: Literal["", Role] = Field(
        "", description="Role given to a request without a session or token; empty (the default) refuses them "
        "(401, or the login page). Any other value opens the door and is logged as a WARNING at every start.",
    )
    api_tokens: list[ApiToken] = Field(
        default_factory=list, description="Bearer tokens accepted besides those of `twinpacs user token`: "
        "name, token, role (peer sites use role service).",
    )
    session_hours: float = Field(
        10.0, gt=0, le=24 * 7, description="A login session ends this long after the login (sign in again).")
    login_attempts_per_minute: int = Field(
        10, ge=1, description="Login attempts allowed per client address and per user name in a minute; "
        "more are refused with 429 and Retry-After.",
    )
    oidc: OidcSettings = Field(
        default_factory=OidcSettings, description="Optional OpenID Connect sign-in (off while oidc.issuer is empty).")
    cookie_secure: bool = Field(
        False, description="Mark the session cookie Secure even on plain http (a TLS proxy in front); "
        "it is always Secure when this site serves HTTPS itself.",
    )

    @field_validator("api_tokens")
    @classmethod
    def _unique(cls, tokens: list[ApiToken]) -> list[ApiToken]:
        names = [t.name for t in tokens]
        if len(set(names)) != len(names):
            raise ValueError(f"api token names must be unique: {', '.join(names)}")
        return tokens


class LimitSettings(Section):
    """Bounds on what one request may ask of a site (issue 9): sizes, result counts, time."""

    dicom_max_pdu_bytes: int = Field(
        4 * 1024 * 1024, ge=4096, le=2**32 - 1,
        description="Largest PDU this site receives: offered in A-ASSOCIATE (Maximum Length); a peer's PDU "
        "announcing more is refused with an A-ABORT before anything is allocated.",
    )
    max_upload_bytes: int = Field(
        2 * 1024**3, ge=1024,
        description="Largest STOW-RS request body; a larger one is refused (413) as soon as it passes the limit, "
        "nothing stored.",
    )
    max_json_bytes: int = Field(
        1024 * 1024, ge=1024,
        description="Largest JSON request body of the site's API (orders, notices, incidents...); larger: 413.",
    )
    max_query_results: int = Field(
        1000, ge=1,
        description="Most matches one QIDO-RS response or C-FIND returns (also QIDO's default and largest limit); "
        "QIDO pages with limit/offset and warns when truncated, C-FIND ends with status 0xA700.",
    )
    request_timeout_s: float = Field(
        60.0, gt=0,
        description="Seconds a peer may stay silent mid-request (HTTP keep-alive and header reads, DIMSE "
        "network/ACSE/DIMSE reads, an unfinished HL7 message) before the connection is closed.",
    )
    hl7_max_message_bytes: int = Field(
        1024 * 1024, ge=1024,
        description="Largest HL7 v2 message over MLLP; a larger one is refused (AR) and the connection closed.",
    )
