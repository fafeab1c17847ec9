"""Accounts, their API tokens and login sessions in the index (tables `accounts`,
`account_tokens`, `login_sessions`): the SQL behind core.accounts.AccountStore."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Row

from ..core.accounts import Account, Session, UserToken
from .database import Database
from .notices import as_utc
from .schema import account_tokens, accounts, login_sessions

_ACCOUNT = (accounts.c.name, accounts.c.role, accounts.c.disabled, accounts.c.created_at)


def _account(row: Row[Any]) -> Account:
    created_at = as_utc(row.created_at)
    assert created_at is not None
    return Account(row.name, row.role, bool(row.disabled), created_at)


class SqlAccountStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, name: str, role: str, password_hash: str, at: datetime) -> Account:
        self.db.write(lambda conn: conn.execute(insert(accounts).values(
            name=name, role=role, password_hash=password_hash, disabled=False, created_at=at)))
        return Account(name, role, False, at)

    def get(self, name: str) -> tuple[Account, str] | None:
        with self.db.read() as conn:
            row = conn.execute(select(*_ACCOUNT, accounts.c.password_hash).where(accounts.c.name == name)).first()
        return (_account(row), row.password_hash) if row else None

    def accounts(self) -> list[Account]:
        with self.db.read() as conn:
            return [_account(row) for row in conn.execute(select(*_ACCOUNT).order_by(accounts.c.name))]

    def set_disabled(self, name: str, disabled: bool) -> bool:
        def work(conn: Connection) -> bool:
            done = conn.execute(update(accounts).where(accounts.c.name == name).values(disabled=disabled))
            if disabled:  # its sessions end now, not at their expiry
                owner = select(accounts.c.id).where(accounts.c.name == name).scalar_subquery()
                conn.execute(delete(login_sessions).where(login_sessions.c.account_id == owner))
            return bool(done.rowcount)
        return self.db.write(work)

    def set_password_hash(self, name: str, password_hash: str) -> bool:
        def work(conn: Connection) -> bool:
            done = conn.execute(update(accounts).where(accounts.c.name == name).values(password_hash=password_hash))
            owner = select(accounts.c.id).where(accounts.c.name == name).scalar_subquery()
            conn.execute(delete(login_sessions).where(login_sessions.c.account_id == owner))
            return bool(done.rowcount)
        return self.db.write(work)

    def set_role(self, name: str, role: str) -> bool:
        done = self.db.write(lambda conn: conn.execute(update(accounts).where(accounts.c.name == name).values(role=role)))
        return bool(done.rowcount)

    def add_token(self, name: str, token_hash: str, at: datetime) -> None:
        owner = select(accounts.c.id).where(accounts.c.name == name).scalar_subquery()
        self.db.write(lambda conn: conn.execute(insert(account_tokens).values(
            account_id=owner, token_hash=token_hash, created_at=at)))

    def by_token(self, token_hash: str) -> Account | None:
        statement = (select(*_ACCOUNT).join(account_tokens, account_tokens.c.account_id == accounts.c.id)
                     .where(account_tokens.c.token_hash == token_hash))
        with self.db.read() as conn:
            row = conn.execute(statement).first()
        return _account(row) if row else None

    def tokens(self, name: str) -> list[UserToken]:
        statement = (select(account_tokens.c.id, account_tokens.c.created_at)
                     .join(accounts, accounts.c.id == account_tokens.c.account_id)
                     .where(accounts.c.name == name).order_by(account_tokens.c.id))
        with self.db.read() as conn:
            rows = conn.execute(statement).all()
        return [UserToken(row.id, as_utc(row.created_at)) for row in rows]  # type: ignore[arg-type]  # never NULL

    def delete_tokens(self, name: str, token_id: int | None) -> int:
        owner = select(accounts.c.id).where(accounts.c.name == name).scalar_subquery()
        statement = delete(account_tokens).where(account_tokens.c.account_id == owner)
        if token_id is not None:
            statement = statement.where(account_tokens.c.id == token_id)
        return int(self.db.write(lambda conn: conn.execute(statement)).rowcount)

    def add_session(self, session_hash: str, name: str, csrf: str, at: datetime, expires_at: datetime) -> None:
        def work(conn: Connection) -> None:
            conn.execute(delete(login_sessions).where(login_sessions.c.expires_at < at))  # expired ones go here
            owner = select(accounts.c.id).where(accounts.c.name == name).scalar_subquery()
            conn.execute(insert(login_sessions).values(session_hash=session_hash, account_id=owner, csrf=csrf,
                                                       created_at=at, expires_at=expires_at))
        self.db.write(work)

    def session(self, session_hash: str, now: datetime) -> Session | None:
        statement = (select(*_ACCOUNT, login_sessions.c.csrf, login_sessions.c.expires_at)
                     .join(accounts, accounts.c.id == login_sessions.c.account_id)
                     .where(login_sessions.c.session_hash == session_hash))
        with self.db.read() as conn:
            row = conn.execute(statement).first()
        if row is None:
            return None
        expires_at = as_utc(row.expires_at)
        assert expires_at is not None
        return Session(_account(row), row.csrf, expires_at) if expires_at > now else None

    def end_session(self, session_hash: str) -> None:
        self.db.write(lambda conn: conn.execute(
            delete(login_sessions).where(login_sessions.c.session_hash == session_hash)))
