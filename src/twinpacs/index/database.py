"""Engines and units of work. SQLite: WAL, one writer (BEGIN IMMEDIATE behind a lock),
readers on their own connections so they never wait for ingest (G3). PostgreSQL: the
same SQL; concurrent writers are serialised by row locks and retried on conflict."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, OperationalError
from sqlalchemy.pool import NullPool

from ..errors import ConfigurationError, TwinpacsError
from .migrate import ensure_current, masked_url

T = TypeVar("T")

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",  # a committed store survives power loss, not only a crash (G1)
    "PRAGMA busy_timeout=30000",
    "PRAGMA foreign_keys=ON",
    "PRAGMA case_sensitive_like=ON",  # DICOM wildcard matching is case-sensitive except PN
)


class Database:
    """`check_schema=False` is for the tools that repair or inspect the schema themselves
    (`twinpacs db upgrade|status|check`, `twinpacs migrate`); every other user gets a database
    at the schema revision this version expects, or a ConfigurationError saying what to run."""

    def __init__(self, url: str, check_schema: bool = True) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._write_lock = threading.Lock()
        self._sqlite_writer: Connection | None = None  # SQLite's one writer, kept checked out (see write)
        try:
            if self.is_sqlite:
                self.writer = self._sqlite_engine(url, immediate=True)
                self.reader = self._sqlite_engine(url, immediate=False)
            else:
                self.writer = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
                self.reader = self.writer
        except (ArgumentError, NoSuchModuleError, ValueError) as exc:
            raise ConfigurationError(f"database url {masked_url(url)!r} is not usable: {exc}") from None
        if check_schema:
            try:
                self._ensure_current()
            except OperationalError as exc:
                self.dispose()
                raise TwinpacsError(f"cannot open the index database {masked_url(url)}: {exc.orig}") from None
            except BaseException:
                self.dispose()
                raise

    def _ensure_current(self, patience_s: float = 30.0) -> None:
        """The schema check, retried while another process creates a new SQLite file: switching
        it to WAL needs a moment of exclusive access, for which SQLite does not wait."""
        deadline = time.monotonic() + patience_s
        while True:
            try:
                ensure_current(self.writer, self.reader, self.url)
                return
            except OperationalError as exc:
                if not (self.is_sqlite and "locked" in str(exc.orig)) or time.monotonic() > deadline:
                    raise
                time.sleep(random.uniform(0.01, 0.05))

    @staticmethod
    def _sqlite_engine(url: str, immediate: bool) -> Engine:
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=NullPool if url.endswith(":memory:") else None,
        )

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_conn.cursor()
            for pragma in _SQLITE_PRAGMAS:
                cursor.execute(pragma)
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    def write(self, work: Callable[[Connection], T], attempts: int = 5) -> T:
        """Run `work` in one write transaction; retry with jittered backoff when a
        concurrent writer made it fail (unique race, serialisation, lock timeout)."""
        for attempt in range(attempts):
            try:
                with self._write_transaction() as conn:
                    return work(conn)
            except (IntegrityError, OperationalError):
                if attempt == attempts - 1:
                    raise
                time.sleep(random.uniform(0, 0.01 * 2**attempt))
        raise AssertionError("unreachable")

    @contextmanager
    def _write_transaction(self) -> Iterator[Connection]:
        """SQLite has one writer at a time (the lock), so it keeps one connection: a pool checkout
        and return (with its reset) per store cost as much as the store's statements (issue 4)."""
        if not self.is_sqlite:
            with self.writer.begin() as conn:
                yield conn
            return
        with self._write_lock:
            if self._sqlite_writer is None:
                self._sqlite_writer = self.writer.connect()
            with self._sqlite_writer.begin():
                yield self._sqlite_writer

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.reader.connect() as conn:
            with conn.begin():
                yield conn

    def dispose(self) -> None:
        with self._write_lock:
            if self._sqlite_writer is not None:
                self._sqlite_writer.close()
                self._sqlite_writer = None
        self.writer.dispose()
        self.reader.dispose()
