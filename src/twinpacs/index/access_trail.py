"""The access trail in the index (table `access_trail`): append and read only. This module must
never gain an UPDATE or a DELETE on the table; tests/trail checks its source.

Writes: reads of patient data (QIDO, WADO, pages) are frequent and must not wait for a commit
while ingest holds the writer (issue 4), so `record` only queues the entry; a background thread
commits the queue every FLUSH_INTERVAL_S in one transaction, and `close` (site.close) commits
what is left. Rare actions (failover, correction, merge, deletion, configuration) use
`record_now`, which commits before returning. Neither ever raises into its caller: a failed
write is logged, and a queued batch is tried again with the next one."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, Row

from ..core.access_trail import AccessEntry, TrailFilter, TrailRecord
from ..core.principal import Principal
from .database import Database
from .notices import as_utc
from .schema import access_trail

log = logging.getLogger("twinpacs.access_trail")

FLUSH_INTERVAL_S = 0.15
# Entries kept while the database refuses writes; beyond this the oldest are dropped (and logged)
# rather than the process running out of memory.
MAX_PENDING = 100_000


def _row(at: datetime, site: str, entry: AccessEntry) -> dict[str, Any]:
    p = entry.principal
    return {"at": at, "site": site, "action": entry.action, "outcome": entry.outcome, "door": entry.door,
            "principal_name": p.name[:128], "principal_role": p.role[:32], "principal_kind": p.kind,
            "address": p.address[:64], "patient_id": entry.patient_id[:64], "study_uid": entry.study_uid[:64],
            "detail": entry.detail}


def _record(row: Row[Any]) -> TrailRecord:
    m = row._mapping
    at = as_utc(m["at"])
    assert at is not None
    principal = Principal(m["principal_name"], m["principal_role"], m["principal_kind"], m["address"])
    entry = AccessEntry(principal, m["action"], m["outcome"], m["door"], m["patient_id"], m["study_uid"],
                        m["detail"])
    return TrailRecord(m["id"], at, m["site"], entry)


class SqlAccessTrail:
    def __init__(self, db: Database, site: str, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.site = site
        self.clock = clock
        self._pending: list[dict[str, Any]] = []
        self._wake = threading.Condition()
        self._writing = threading.Lock()  # one batch at a time, in order
        self._thread: threading.Thread | None = None
        self._closed = False
        self._failing = False  # the last commit failed

    # -- writing ---------------------------------------------------------------------------

    def record(self, entry: AccessEntry) -> None:
        """Queue the entry, timed now; committed within FLUSH_INTERVAL_S (after close: at once)."""
        try:
            row = _row(self.clock(), self.site, entry)
            with self._wake:
                if self._closed:
                    closed = True
                else:
                    closed = False
                    self._pending.append(row)
                    if len(self._pending) > MAX_PENDING:
                        del self._pending[0]
                        log.error("access trail: database unwritable, oldest queued entry dropped")
                    if self._thread is None:
                        self._thread = threading.Thread(target=self._run, name="access-trail", daemon=True)
                        self._thread.start()
            if closed:
                self._write([row])
        except Exception:  # noqa: BLE001 - the trail never breaks the request it records
            log.exception("access trail: entry not recorded: %s", entry)

    def record_now(self, entry: AccessEntry) -> None:
        """Commit the entry before returning, with those queued before it (the ids keep the
        order of recording): for rare actions whose entry must not wait. If the database refuses
        the write, the entry stays queued for the next try, as with record()."""
        try:
            row = _row(self.clock(), self.site, entry)
            with self._wake:
                self._pending.append(row)
            self.flush()
        except Exception:  # noqa: BLE001 - as record()
            log.exception("access trail: entry not recorded: %s", entry)

    def flush(self) -> None:
        """Commit everything queued so far (a reader calls it to see its own site's latest entries)."""
        with self._writing:
            with self._wake:
                batch, self._pending = self._pending, []
            if batch:
                self._commit(batch)

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=10)
        self.flush()

    def _run(self) -> None:
        while True:
            with self._wake:
                if not self._closed:
                    self._wake.wait(FLUSH_INTERVAL_S)
                if self._closed:
                    return  # close() commits the rest
            self.flush()

    def _commit(self, batch: list[dict[str, Any]]) -> None:
        """Commit a batch taken off the queue; on failure put it back in front for the next try."""
        try:
            self._write(batch)
        except Exception:  # noqa: BLE001 - a busy or absent database must not stop the thread
            if not self._failing:  # once per outage, not every interval
                log.exception("access trail: %d entries not yet committed, will retry", len(batch))
            self._failing = True
            with self._wake:
                self._pending[:0] = batch
                del self._pending[:-MAX_PENDING]
            return
        if self._failing:
            log.warning("access trail: writing again; %d entries committed", len(batch))
            self._failing = False

    def _write(self, rows: list[dict[str, Any]]) -> None:
        def work(conn: Connection) -> None:
            conn.execute(insert(access_trail), rows)
        self.db.write(work)

    # -- reading ---------------------------------------------------------------------------

    def entries(self, wanted: TrailFilter = TrailFilter()) -> list[TrailRecord]:
        """Matching entries, newest first; what this process queued is committed first."""
        self.flush()
        t = access_trail.c
        statement = select(access_trail).order_by(t.id.desc()).limit(wanted.limit)
        # In UTC, as every time is written: SQLite compares the text, whatever zone it names.
        if wanted.since is not None:
            statement = statement.where(t.at >= wanted.since.astimezone(timezone.utc))
        if wanted.until is not None:
            statement = statement.where(t.at <= wanted.until.astimezone(timezone.utc))
        for column, value in ((t.patient_id, wanted.patient_id), (t.study_uid, wanted.study_uid),
                              (t.principal_name, wanted.who), (t.action, wanted.action)):
            if value:
                statement = statement.where(column == value)
        with self.db.read() as conn:
            return [_record(row) for row in conn.execute(statement)]
