"""Who may use the HTTP door (issue 9): local accounts with a role, their login sessions and
API tokens, the tokens of the configuration, and the login rate limit.

Passwords are kept as argon2id hashes; tokens and session ids are random (256 bits) and kept
only as their SHA-256, so a copy of the index lets nobody in. Nothing here logs a secret."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Literal, Protocol, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..errors import InvalidInput
from .principal import Principal

Role = Literal["radiologist", "radiographer", "administrator", "service"]
ROLES: tuple[str, ...] = get_args(Role)
MIN_PASSWORD = 12
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")

OIDC_USER_PREFIX = "oidc:"  # accounts an OpenID Connect provider vouches for: oidc:NAME
EXTERNAL_PASSWORD = "!external"  # the password hash of accounts vouched for elsewhere: verifies nothing
_hasher = PasswordHasher()  # argon2id with the library's current parameters (RFC 9106)


@cache
def _dummy_hash() -> str:
    """Verified when a name is unknown, so that a refusal takes as long whether the name exists or not."""
    return _hasher.hash(secrets.token_urlsafe(16))


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    return role


def check_name(name: str) -> str:
    if not 1 <= len(name) <= 64 or not set(name) <= _NAME_CHARS:
        raise InvalidInput("a user name has 1-64 characters: letters, digits, and . _ - @")
    return name


def check_password(name: str, password: str) -> None:
    """The password policy: long enough, and not the name. Length beats composition rules
    (NIST SP 800-63B 5.1.1)."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD} characters")
    if name.lower() in password.lower():
        raise InvalidInput("a password must not contain the user name")


def new_secret() -> str:
    """A token or session id: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What is stored of a token or session id: its SHA-256 (hex). The secret itself has 256
    bits, so no slow hash is needed."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two secrets."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    disabled: bool
    created_at: datetime


@dataclass(frozen=True)
class Session:
    account: Account
    csrf: str  # the session's CSRF token, sent back in every form and cookie-authenticated POST
    expires_at: datetime


@dataclass(frozen=True)
class UserToken:
    """A token `twinpacs user token` made: its number and when; the secret itself is not kept."""
    id: int
    created_at: datetime


@dataclass(frozen=True)
class ConfigToken:
    name: str
    token: str
    role: str


class AccountStore(Protocol):
    def add(self, name: str, role: str, password_hash: str, at: datetime) -> Account: ...
    def get(self, name: str) -> tuple[Account, str] | None: ...  # the account and its password hash
    def accounts(self) -> list[Account]: ...
    def set_disabled(self, name: str, disabled: bool) -> bool: ...
    def set_password_hash(self, name: str, password_hash: str) -> bool: ...
    def set_role(self, name: str, role: str) -> bool: ...
    def add_token(self, name: str, token_hash: str, at: datetime) -> None: ...
    def by_token(self, token_hash: str) -> Account | None: ...
    def tokens(self, name: str) -> list[UserToken]: ...
    def delete_tokens(self, name: str, token_id: int | None) -> int: ...  # None: all of the user's
    def add_session(self, session_hash: str, name: str, csrf: str, at: datetime, expires_at: datetime) -> None: ...
    def session(self, session_hash: str, now: datetime) -> Session | None: ...
    def end_session(self, session_hash: str) -> None: ...


class Accounts:
    """Accounts, sessions and tokens over a store; `config_tokens` are the configuration's."""

    def __init__(self, store: AccountStore, clock: Callable[[], datetime],
                 config_tokens: Sequence[ConfigToken] = (), session_hours: float = 10.0) -> None:
        self.store = store
        self.clock = clock
        self.config_tokens = list(config_tokens)
        self.session_length = timedelta(hours=session_hours)

    def add(self, name: str, role: str, password: str) -> Account:
        check_name(name)
        check_role(role)
        check_password(name, password)
        if self.store.get(name) is not None:
            raise InvalidInput(f"user {name!r} exists already")
        return self.store.add(name, role, _hasher.hash(password), self.clock())

    def set_password(self, name: str, password: str) -> None:
        """A new password; the user's open sessions end."""
        check_password(name, password)
        if not self.store.set_password_hash(name, _hasher.hash(password)):
            raise InvalidInput(f"no user {name!r}")

    def list(self) -> list[Account]:
        return self.store.accounts()

    def _known(self, name: str) -> None:
        if self.store.get(name) is None:
            raise InvalidInput(f"no user {name!r}")

    def enable(self, name: str) -> None:
        if not self.store.set_disabled(name, False):
            raise InvalidInput(f"no user {name!r}")

    def tokens(self, name: str) -> list[UserToken]:
        self._known(name)
        return self.store.tokens(name)

    def revoke_tokens(self, name: str, token_id: int | None) -> int:
        """Revoke one of the user's tokens (by its number) or, with None, all of them; refused
        from the next request on. How many were revoked; a number the user does not own is an error."""
        self._known(name)
        revoked = self.store.delete_tokens(name, token_id)
        if token_id is not None and not revoked:
            raise InvalidInput(f"user {name!r} has no token number {token_id} (`twinpacs user tokens {name}` lists them)")
        return revoked

    def disable(self, name: str) -> None:
        """Refuses the user's logins, sessions and tokens from the next request on."""
        if not self.store.set_disabled(name, True):
            raise InvalidInput(f"no user {name!r}")

    def new_token(self, name: str) -> str:
        """A new API token for the user, returned this once; only its hash is kept."""
        self._known(name)
        token = new_secret()
        self.store.add_token(name, digest(token), self.clock())
        return token

    def login(self, name: str, password: str) -> Account | None:
        """The account when the password is right and the account enabled; None otherwise."""
        found = self.store.get(name)
        stored = found[1] if found else _dummy_hash()
        try:
            _hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if found is None or found[0].disabled:
            return None
        return found[0]

    def external(self, name: str, role: str) -> Account | None:
        """The account of a user vouched for elsewhere (OpenID Connect), made or given `role` as
        the identity provider says now; None when an administrator disabled it. Its password hash
        is not an argon2 hash, so no password ever opens it."""
        check_role(role)
        found = self.store.get(name)
        if found is None:
            return self.store.add(name, role, EXTERNAL_PASSWORD, self.clock())
        account = found[0]
        if account.disabled:
            return None
        if account.role != role:
            self.store.set_role(name, role)
            account = Account(account.name, role, account.disabled, account.created_at)
        return account

    def open_session(self, account: Account) -> tuple[str, Session]:
        """A new session id (for the cookie; only its hash is kept) and the session."""
        session_id, now = new_secret(), self.clock()
        session = Session(account, new_secret(), now + self.session_length)
        self.store.add_session(digest(session_id), account.name, session.csrf, now, session.expires_at)
        return session_id, session

    def session(self, session_id: str) -> Session | None:
        """The live session of an enabled account; None when unknown, expired or disabled."""
        session = self.store.session(digest(session_id), self.clock())
        return session if session and not session.account.disabled else None

    def end_session(self, session_id: str) -> None:
        self.store.end_session(digest(session_id))

    def configured(self, token: str, address: str) -> Principal | None:
        """Who a configuration token is (compared in constant time, every one of them); None for
        any other token. Reads no index: the web door answers these without a thread hop."""
        matched = [t for t in self.config_tokens if same(t.token, token)]  # no early exit: timing
        return Principal(matched[0].name, matched[0].role, "token", address) if matched else None

    def bearer(self, token: str, address: str) -> Principal | None:
        """Who a bearer token is: a configuration token or an enabled user's token; None when it
        is neither."""
        configured = self.configured(token, address)
        if configured is not None:
            return configured
        account = self.store.by_token(digest(token))
        if account is None or account.disabled:
            return None
        return Principal(account.name, account.role, "token", address)


class AttemptLog(Protocol):
    def record_unless_over(self, key_hashes: Sequence[str], now: datetime, limit: int) -> datetime | None:
        """In one step for every process on the index: when each key has had fewer than `limit`
        attempts in the minute before `now`, record one for each and return None; otherwise
        record nothing and return when the last of the full keys has room again."""
        ...


class RateLimit:
    """At most `per_minute` events per key (a client address, a user name) in any minute,
    counted in the index: a site served by several processes or nodes shares one count."""

    def __init__(self, per_minute: int, log: AttemptLog, clock: Callable[[], datetime]) -> None:
        self.per_minute = per_minute
        self.log = log
        self.clock = clock

    def hit(self, *keys: str) -> float:
        """Counts one event for each key; 0 when allowed, else the seconds until every key
        allows again (nothing counted then)."""
        now = self.clock()
        free_at = self.log.record_unless_over([digest(key) for key in keys], now, self.per_minute)
        return 0.0 if free_at is None else max((free_at - now).total_seconds(), 1.0)


def bearer(token: str) -> dict[str, str]:
    """The header that sends `token` to another site ({} without a token)."""
    return {"Authorization": f"Bearer {token}"} if token else {}
