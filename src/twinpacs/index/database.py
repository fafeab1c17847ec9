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
KEPT_READERS = 8  # idle SQLite reader connections kept for snapshot(); more are closed after use

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
        self._readers: list[Connection] = []  # SQLite readers kept checked out, idle (see snapshot)
        self._readers_lock = threading.Lock()
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

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read transaction for statements run on the DBAPI cursor (index/prepared.py), as a
        search does. SQLite keeps a few reader connections checked out and begins and ends the
        transaction itself: a pool checkout and return and SQLAlchemy's BEGIN cost 60 us, five
        times the PatientID search they wrapped (issue 4). Elsewhere it is read()."""
        if not self.is_sqlite or self.url.endswith(":memory:"):
            with self.read() as conn:
                yield conn
            return
        with self._readers_lock:
            conn = self._readers.pop() if self._readers else None
        if conn is None:
            conn = self.reader.connect()
        raw = conn.connection.dbapi_connection
        assert raw is not None
        reusable = False
        try:
            raw.execute("BEGIN")
            yield conn
        finally:
            try:
                raw.execute("ROLLBACK")  # it only read: nothing to commit
                reusable = True
            except Exception:  # noqa: BLE001 (a broken connection is closed, not reused)
                pass
            with self._readers_lock:
                if reusable and len(self._readers) < KEPT_READERS:
                    self._readers.append(conn)
                    conn = None
            if conn is not None:
                conn.close()

    def dispose(self) -> None:
        with self._write_lock:
            if self._sqlite_writer is not None:
                self._sqlite_writer.close()
                self._sqlite_writer = None
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        self.writer.dispose()
        self.reader.dispose()
