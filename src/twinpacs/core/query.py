"""Query keys to matching rules, as PS3.4 C.2.2.2 defines them; shared by C-FIND and QIDO-RS.

The index turns a Query into SQL; `matches()` is the plain reference the SQL is tested against."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from functools import cache

from pydicom.datadict import dictionary_VR, tag_for_keyword

from ..errors import InvalidQuery, UnknownQueryLevel
from .model import UNIQUE_KEY, Level, keys_up_to
from .parsing import check_uid


class MatchKind(str, Enum):
    SINGLE = "single"  # PS3.4 C.2.2.2.1
    UID_LIST = "uid-list"  # C.2.2.2.2
    UNIVERSAL = "universal"  # C.2.2.2.3
    WILDCARD = "wildcard"  # C.2.2.2.4
    RANGE = "range"  # C.2.2.2.5


@dataclass(frozen=True)
class Match:
    keyword: str
    kind: MatchKind
    values: tuple[str, ...] = ()  # SINGLE/WILDCARD: one value; UID_LIST: several
    lower: str = ""  # RANGE bounds, '' for open
    upper: str = ""
    case_insensitive: bool = False  # PN matching ignores case, as most archives do


@dataclass(frozen=True)
class Query:
    level: Level
    matches: tuple[Match, ...]
    return_keys: tuple[str, ...]
    limit: int | None = None
    offset: int = 0

    def active(self) -> list[Match]:
        """The matches that constrain the result (universal ones only ask for a value back)."""
        return [m for m in self.matches if m.kind is not MatchKind.UNIVERSAL]


def parse_level(value: str | None) -> Level:
    try:
        return Level((value or "").strip().upper())
    except ValueError:
        raise UnknownQueryLevel(
            f"QueryRetrieveLevel {value!r} is not one of PATIENT, STUDY, SERIES, IMAGE"
        ) from None


def matchable_keys(level: Level) -> frozenset[str]:
    """The keys a query at `level` can match on: the indexed attributes of the level and
    its parents, and ModalitiesInStudy (the one computed key with a matching rule)."""
    return frozenset(keys_up_to(level)) | {"ModalitiesInStudy"}


def build_query(
    level: Level,
    criteria: dict[str, str],
    return_keys: tuple[str, ...] = (),
    limit: int | None = None,
    offset: int = 0,
) -> Query:
    """`criteria`: keyword -> value as sent (empty value = universal match / return key)."""
    if limit is not None and limit < 0 or offset < 0:
        raise InvalidQuery("limit and offset must not be negative")
    matchable = matchable_keys(level)
    matches = []
    for keyword, raw in criteria.items():
        if tag_for_keyword(keyword) is None:
            raise InvalidQuery(f"{keyword} is not a DICOM attribute keyword")
        if keyword not in matchable:
            continue  # not matchable here: returned empty, like any unsupported key
        matches.append(match_for(keyword, raw))
    keys = tuple(dict.fromkeys((*return_keys, *criteria, UNIQUE_KEY[level])))
    return Query(level, tuple(matches), keys, limit, offset)


@cache
def _vr(keyword: str) -> str:
    """The dictionary VR of a keyword: a look-up through pydicom's tag parsing, once per key."""
    return str(dictionary_VR(keyword))


def match_for(keyword: str, raw: str) -> Match:
    vr = _vr(keyword)
    value = raw.strip() if vr != "PN" else raw.strip().rstrip("^=")
    if value in ("", "*"):
        return Match(keyword, MatchKind.UNIVERSAL)
    if vr == "UI":
        uids = tuple(u.strip() for u in re.split(r"[\\,]", value) if u.strip())
        for uid in uids:
            check_uid(keyword, uid)
        return Match(keyword, MatchKind.UID_LIST if len(uids) > 1 else MatchKind.SINGLE, uids)
    if vr in ("DA", "TM", "DT") and "-" in value:
        lower, _, upper = value.partition("-")
        _check_temporal(keyword, vr, lower)
        _check_temporal(keyword, vr, upper)
        return Match(keyword, MatchKind.RANGE, lower=lower, upper=_pad_upper(vr, upper))
    if vr in ("DA", "TM", "DT"):
        _check_temporal(keyword, vr, value)
    if keyword == "ModalitiesInStudy" or (vr == "CS" and "\\" in value):
        return Match(keyword, MatchKind.UID_LIST, tuple(v for v in value.split("\\") if v))
    kind = MatchKind.WILDCARD if ("*" in value or "?" in value) else MatchKind.SINGLE
    return Match(keyword, kind, (value,), case_insensitive=vr == "PN")


_TEMPORAL = {"DA": re.compile(r"^\d{8}$"), "TM": re.compile(r"^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$"),
             "DT": re.compile(r"^\d{4,14}(\.\d{1,6})?([+-]\d{4})?$")}


def _check_temporal(keyword: str, vr: str, value: str) -> None:
    if value and not _TEMPORAL[vr].match(value):
        raise InvalidQuery(f"{keyword}: {value!r} is not a valid {vr} value or range")


def _pad_upper(vr: str, upper: str) -> str:
    """'-1200' includes 12:00:00.000000; pad so a plain string comparison does the right thing."""
    if vr == "TM" and upper and "." not in upper:
        return upper + "0" * (6 - len(upper)) + ".999999"
    return upper


def matches(match: Match, value: str) -> bool:
    """Reference semantics of one match against one stored value."""
    if match.kind is MatchKind.UNIVERSAL:
        return True
    if match.kind is MatchKind.RANGE:
        if not value:
            return False
        return (not match.lower or value >= match.lower) and (not match.upper or value <= match.upper)
    if match.kind is MatchKind.UID_LIST:
        stored = value.split("\\")
        return any(v in stored for v in match.values)
    wanted, stored = match.values[0], value
    if match.case_insensitive:
        wanted, stored = wanted.lower(), stored.lower()
    if match.kind is MatchKind.SINGLE:
        return stored == wanted
    pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in wanted)
    return re.fullmatch(pattern, stored, flags=re.DOTALL) is not None
