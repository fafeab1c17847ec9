"""Reading HL7 v2 values: locations such as OBR-18 or ORC-7.6, and the data types twinpacs takes
from them (TS/DTM times, XPN/XCN names as DICOM PN, CX identifiers, priorities, sex). Every
wrong value raises an Hl7Error naming the location, so the ACK can say where it is."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo

import hl7

from ..core.ris import Priority
from .acks import DATA_TYPE_ERROR, TABLE_VALUE_NOT_FOUND, VALUE_TOO_LONG, error

_LOCATION = re.compile(r"^([A-Z][A-Z0-9]{2})-(\d+)(?:\.(\d+))?(?:\.(\d+))?$")
_TS = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?([+-]\d{4})?$")

# HL7 table 0027 (priority) as the three ranks twinpacs orders work by.
PRIORITIES = {"S": Priority.STAT, "A": Priority.ASAP, "P": Priority.ASAP, "T": Priority.ASAP,
              "C": Priority.ASAP, "R": Priority.ROUTINE, "": Priority.ROUTINE}
# HL7 table 0001 (administrative sex) as DICOM Patient's Sex (M, F, O or empty).
SEXES = {"M": "M", "F": "F", "O": "O", "A": "O", "N": "O", "X": "O", "U": "", "": ""}


@dataclass(frozen=True)
class Location:
    """SEG-field[.component[.subcomponent]], as the [ris] order_fields setting writes them."""

    segment: str
    field: int
    component: int = 0  # 0: the field as its data type reads it
    subcomponent: int = 0

    @classmethod
    def parse(cls, text: str) -> Location:
        found = _LOCATION.match(text)
        if not found:
            raise ValueError(f"{text!r} is not an HL7 location such as OBR-18 or ORC-7.6")
        return cls(found[1], int(found[2]), int(found[3] or 0), int(found[4] or 0))

    def __str__(self) -> str:
        parts = [f"{self.segment}-{self.field}", *(str(p) for p in (self.component, self.subcomponent) if p)]
        return ".".join(parts)


@dataclass(frozen=True)
class Found:
    """A segment of the message and which occurrence of its kind it is (ERR-2 counts them)."""

    segment: hl7.Segment
    occurrence: int

    @property
    def name(self) -> str:
        return str(self.segment[0])

    def erl(self, field: int, component: int = 0, subcomponent: int = 0) -> str:
        """An ERR-2 error location: SEG^occurrence^field[^repetition^component[^subcomponent]]."""
        parts = [self.name, str(self.occurrence), str(field)]
        if component:
            parts += ["1", str(component)] + ([str(subcomponent)] if subcomponent else [])
        return "^".join(parts)

    def value(self, field: int, component: int = 1, subcomponent: int = 1) -> str:
        """The first repetition's (sub)component, unescaped and stripped; '' when absent."""
        try:
            return str(self.segment.extract_field(field_num=field, repeat_num=1, component_num=component or 1,
                                                  subcomponent_num=subcomponent or 1)).strip()
        except IndexError:  # the message stops short of this component: it is empty
            return ""

    def at(self, location: Location) -> str:
        return self.value(location.field, location.component or 1, location.subcomponent or 1)


def segments(message: hl7.Message) -> list[Found]:
    """Every segment of the message with its occurrence number."""
    seen: dict[str, int] = {}
    found = []
    for segment in message:
        name = str(segment[0])
        seen[name] = seen.get(name, 0) + 1
        found.append(Found(segment, seen[name]))
    return found


def person_name(family: str, given: str, middle: str = "", prefix: str = "", suffix: str = "") -> str:
    """DICOM PN (Family^Given^Middle^Prefix^Suffix) without trailing empty components."""
    return "^".join((family, given, middle, prefix, suffix)).rstrip("^")


def xpn(found: Found, field: int) -> str:
    """XPN (family&prefix^given^middle^suffix^prefix) as DICOM PN."""
    v = found.value
    return person_name(v(field, 1, 1), v(field, 2), v(field, 3), v(field, 5), v(field, 4))


def xcn(found: Found, field: int) -> str:
    """XCN (id^family^given^middle^suffix^prefix) as DICOM PN; the identifier alone when the
    name is missing, so the referral still says who asked."""
    v = found.value
    return person_name(v(field, 2, 1), v(field, 3), v(field, 4), v(field, 6), v(field, 5)) or v(field, 1)


def identifier(found: Found, field: int) -> tuple[str, str]:
    """CX: the identifier (component 1) and its assigning authority (component 4: namespace
    ID, or the universal ID when only that is given)."""
    return found.value(field, 1), found.value(field, 4, 1) or found.value(field, 4, 2)


def timestamp(text: str, zone: tzinfo | None, where: str) -> datetime | None:
    """An HL7 TS/DTM (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]) as an aware datetime in UTC (as
    the index keeps times); without an offset it is in `zone` (None: this machine's local zone)."""
    if not text:
        return None
    found = _TS.match(text)
    try:
        if not found:
            raise ValueError("not YYYYMMDD[HHMM[SS[.S]]][+/-ZZZZ]")
        year, month, day, hour, minute, second, fraction, offset = found.groups()
        moment = datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
                          int(second or 0), int((fraction or "0").ljust(6, "0")))
        if offset:
            sign = 1 if offset[0] == "+" else -1
            minutes = int(offset[1:3]) * 60 + int(offset[3:5])
            if int(offset[1:3]) > 23 or int(offset[3:5]) > 59:
                raise ValueError(f"offset {offset} is out of range")
            aware = moment.replace(tzinfo=timezone(sign * timedelta(minutes=minutes)))
        else:
            aware = moment.replace(tzinfo=zone) if zone is not None else moment.astimezone()
        return aware.astimezone(timezone.utc)
    except ValueError as exc:
        raise error(DATA_TYPE_ERROR, f"{text!r} is not an HL7 date/time ({exc})", where) from None


def birth_date(text: str, where: str) -> str:
    """PID-7 as DICOM DA (YYYYMMDD); a time of birth after the date is dropped."""
    if not text:
        return ""
    digits = text[:8]
    try:
        if not re.fullmatch(r"\d{8}", digits) or (len(text) > 8 and not _TS.match(text)):
            raise ValueError
        date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        raise error(DATA_TYPE_ERROR, f"birth date {text!r} is not a date (YYYYMMDD)", where) from None
    return digits


def sex(text: str, where: str) -> str:
    try:
        return SEXES[text.upper()]
    except KeyError:
        raise error(TABLE_VALUE_NOT_FOUND, f"sex {text!r} is not in HL7 table 0001 (F, M, O, U, A, N)",
                    where) from None


def priority(text: str, where: str) -> Priority:
    try:
        return PRIORITIES[text.upper()]
    except KeyError:
        raise error(TABLE_VALUE_NOT_FOUND, f"priority {text!r} is not one of S (STAT), A, P, T, C (ASAP), "
                    "R (routine)", where) from None


def check_length(value: str, limit: int | None, what: str, where: str) -> None:
    """A value longer than the index keeps is refused (AE 104), never cut."""
    if limit is not None and len(value) > limit:
        shown = f"{value[:40]!r}..." if len(value) > 40 else repr(value)
        raise error(VALUE_TOO_LONG, f"{what} {shown} is longer than {limit} characters", where)
