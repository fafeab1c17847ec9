"""The HL7 audit (table `hl7_messages`): every message exactly as it arrived, refused ones too,
with the acknowledgement it got. What the RIS sent can then be shown, not reconstructed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, insert, select
from sqlalchemy.engine import Connection, Row

from .database import Database
from .notices import as_utc, new_id
from .schema import hl7_messages


@dataclass(frozen=True)
class Hl7Record:
    received_at: datetime
    remote: str  # host:port of the sender
    control_id: str  # MSH-10
    message_type: str  # e.g. ADT^A01
    raw: str
    ack_code: str  # AA, AE or AR
    error: str = ""
    id: int = 0


def _fit(column: str, value: str) -> str:
    """Header values cut to their column: a refused message with an absurd MSH-10 is still
    recorded (its raw text keeps the whole value)."""
    kind = hl7_messages.c[column].type
    limit = kind.length if isinstance(kind, String) else None
    return value[:limit] if limit else value


def _record(row: Row[Any]) -> Hl7Record:
    m = row._mapping
    received_at = as_utc(m["received_at"])
    assert received_at is not None
    return Hl7Record(received_at, m["remote"], m["control_id"], m["message_type"], m["raw"], m["ack_code"],
                     m["error"], m["id"])


class Hl7Log:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, entry: Hl7Record) -> int:
        # PostgreSQL text cannot hold NUL; every other byte of a garbage frame is kept as it came.
        values = {"received_at": entry.received_at, "remote": _fit("remote", entry.remote),
                  "control_id": _fit("control_id", entry.control_id),
                  "message_type": _fit("message_type", entry.message_type),
                  "raw": entry.raw.replace("\x00", "\\x00"), "ack_code": entry.ack_code, "error": entry.error}

        def work(conn: Connection) -> int:
            return new_id(conn.execute(insert(hl7_messages).values(**values)))
        return self.db.write(work)

    def recent(self, limit: int = 100) -> list[Hl7Record]:
        """The newest first."""
        with self.db.read() as conn:
            rows = conn.execute(select(hl7_messages).order_by(hl7_messages.c.id.desc()).limit(limit))
            return [_record(r) for r in rows]
