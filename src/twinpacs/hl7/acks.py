"""HL7 acknowledgements (original mode, HL7 v2.5 2.9.2): AA when the message was applied; AE
when it was understood but its content is wrong; AR when it could not be processed at all.
A refusal carries MSA-3 and an ERR segment saying what is wrong and where (table 0357 codes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import hl7

# HL7 table 0357, message error condition codes.
SEGMENT_SEQUENCE = 100
REQUIRED_FIELD_MISSING = 101
DATA_TYPE_ERROR = 102
TABLE_VALUE_NOT_FOUND = 103
VALUE_TOO_LONG = 104
UNSUPPORTED_MESSAGE_TYPE = 200
UNSUPPORTED_EVENT = 201
UNSUPPORTED_VERSION = 203
UNKNOWN_KEY = 204
DUPLICATE_KEY = 205
INTERNAL_ERROR = 207

CODE_TEXT = {
    SEGMENT_SEQUENCE: "Segment sequence error", REQUIRED_FIELD_MISSING: "Required field missing",
    DATA_TYPE_ERROR: "Data type error", TABLE_VALUE_NOT_FOUND: "Table value not found",
    VALUE_TOO_LONG: "Value too long", UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    UNSUPPORTED_EVENT: "Unsupported event code", UNSUPPORTED_VERSION: "Unsupported version id",
    UNKNOWN_KEY: "Unknown key identifier", DUPLICATE_KEY: "Duplicate key identifier",
    INTERNAL_ERROR: "Application internal error",
}

# The header an acknowledgement is built on when the message has none that can be used.
_FALLBACK = "MSH|^~\\&|||||||ACK^^ACK||P|2.5"


class Hl7Error(Exception):
    """Why a message is refused. `ack` is AE or AR; `location` an ERL such as PID^1^3
    (segment, its occurrence in the message, field, repetition, component)."""

    def __init__(self, ack: str, code: int, message: str, location: str = "") -> None:
        super().__init__(message)
        self.ack, self.code, self.message, self.location = ack, code, message, location

    def describe(self) -> str:
        where = f" at {self.location}" if self.location else ""
        return f"{self.code} {CODE_TEXT[self.code]}{where}: {self.message}"


def rejected(code: int, message: str, location: str = "") -> Hl7Error:
    return Hl7Error("AR", code, message, location)


def error(code: int, message: str, location: str = "") -> Hl7Error:
    return Hl7Error("AE", code, message, location)


@dataclass(frozen=True)
class Ack:
    code: str  # AA, AE or AR
    text: str  # the acknowledgement message, segments separated by CR


def build_ack(source: hl7.Message | None, control_id: str, failure: Hl7Error | None) -> Ack:
    """The acknowledgement of `source` (None: not an HL7 message at all). Built by the hl7
    library from the source's header, or from a neutral one when that header is unusable."""
    code = failure.ack if failure else "AA"
    ack = _ack_of(source, code)
    if ack is None:
        base = hl7.parse(_FALLBACK)
        ack = base.create_ack(code, application="TWINPACS")
        ack.assign_field(control_id, "MSA", 1, 2)
    ack.assign_field(datetime.now().astimezone().strftime("%Y%m%d%H%M%S%z"), "MSH", 1, 7)
    if failure is not None:
        ack.assign_field(ack.escape(failure.message), "MSA", 1, 3)
        ack.append(ack.create_segment([ack.create_field(["ERR"])]))
        for number, part in enumerate(failure.location.split("^") if failure.location else [], 1):
            ack.assign_field(part, "ERR", 1, 2, 1, number)
        for number, part in enumerate((str(failure.code), CODE_TEXT[failure.code], "HL70357"), 1):
            ack.assign_field(part, "ERR", 1, 3, 1, number)
        ack.assign_field("E", "ERR", 1, 4)
        ack.assign_field(ack.escape(failure.message), "ERR", 1, 8)
    return Ack(code, str(ack).rstrip("\r"))


def _ack_of(source: hl7.Message | None, code: str) -> hl7.Message | None:
    if source is None:
        return None
    try:
        return source.create_ack(code)
    except (TypeError, IndexError, KeyError):  # a header without a trigger event or too short
        return None
