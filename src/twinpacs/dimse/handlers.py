"""C-STORE and C-FIND: read the event, make one core call, answer with a status (PS3.4 B, C).

C-ECHO needs nothing beyond pynetdicom's default handler."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID
from pynetdicom.events import Event

from ..core.archive import Archive, StoreResult, StoreStatus
from ..core.model import Level
from ..core.query import build_query, parse_level
from ..errors import UnknownQueryLevel
from .identifiers import EncodedIdentifier, encode_identifier, installed
from .part10 import received_object
from .status import CANCEL, OUT_OF_RESOURCES, PENDING, SUCCESS, WARNING_COERCION, failure, status
from .uids import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

log = logging.getLogger(__name__)

# Elements of an identifier that steer the query rather than ask for an attribute.
_CONTROL_KEYWORDS = {"QueryRetrieveLevel", "SpecificCharacterSet", "RetrieveAETitle"}
_STUDY_ROOT_MODELS = {
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
}
# C-FIND on this model is answered from the orders (dimse/worklist.py), not the archive.
ModalityWorklistInformationFind = UID("1.2.840.10008.5.1.4.31")
FindResponses = Iterator[tuple[int | Dataset, Dataset | None]]
_BINARY_VRS = {"US": int, "SS": int, "UL": int, "SL": int, "UV": int, "SV": int, "FL": float, "FD": float}


def handle_store(event: Event, archive: Archive) -> tuple[Dataset | int, StoreResult | None]:
    """Store the data set exactly as received; acknowledge only what the archive made durable
    (G1). The status to answer, and what was stored (None when it was refused)."""
    try:
        result = archive.store(received_object(event), source=event.assoc.requestor.ae_title)
    except Exception as exc:
        return failure(exc, "C-STORE"), None
    if result.status is StoreStatus.CONFLICT:
        return status(WARNING_COERCION, "another version of this SOP Instance is held; both kept"), result
    return SUCCESS, result


def handle_find(event: Event, archive: Archive, ae_title: str,
                worklist: Callable[[Event], FindResponses] | None = None,
                max_results: int | None = None) -> FindResponses:
    """Pending responses for the matches, then Success; past `max_results` matches the
    search ends with Refused: Out of Resources (0xA700) and a comment instead, so that a
    peer never mistakes a cut-off list for a complete one."""
    if worklist is not None and event.request.AffectedSOPClassUID == ModalityWorklistInformationFind:
        yield from worklist(event)
        return
    try:
        identifier = event.identifier
        level = query_level(identifier, str(event.request.AffectedSOPClassUID))
        requested = [e for e in identifier if e.keyword not in _CONTROL_KEYWORDS and e.tag.group > 0x0002]
        criteria = {e.keyword: text(e) for e in requested if e.keyword}
        limit = None if max_results is None else max_results + 1  # one more tells there are more
        rows = archive.find(build_query(level, criteria, tuple(criteria), limit))
    except Exception as exc:
        yield failure(exc, "C-FIND"), None
        return
    yield from pending_then_success(event, responses(event, level, requested, rows, ae_title), max_results, "C-FIND")


def responses(event: Event, level: Level, requested: list[DataElement], rows: Iterable[dict[str, str]],
              ae_title: str) -> Iterator[Dataset]:
    """`response` for each row, encoded directly where the context's transfer syntax allows
    (dimse/identifiers.py: the same bytes, without a pydicom Dataset per match)."""
    syntax = event.context.transfer_syntax
    direct = installed() and syntax.is_little_endian and not syntax.is_deflated
    control = [(0x00080005, "CS", "ISO_IR 192"), (0x00080052, "CS", level.value), (0x00080054, "AE", ae_title)]
    wanted = [(int(e.tag), e.VR.split(" or ")[0], e.keyword) for e in requested]
    for row in rows:
        encoded = None
        if direct:
            encoded = encode_identifier([*control, *((tag, vr, row.get(keyword, "")) for tag, vr, keyword in wanted)],
                                        syntax.is_implicit_VR)
        yield response(level, requested, row, ae_title) if encoded is None else EncodedIdentifier(
            encoded, syntax.is_implicit_VR)


def pending_then_success(event: Event, found: Iterable[Dataset], max_results: int | None,
                         what: str) -> FindResponses:
    """One Pending response per match, then Success; Cancel when the peer cancels; past
    `max_results` matches Refused: Out of Resources (0xA700) with a comment instead."""
    for count, identifier in enumerate(found):
        if count == max_results:
            log.info("%s from %s stopped after %d matches (limits.max_query_results)",
                     what, event.assoc.requestor.ae_title, max_results)
            yield status(OUT_OF_RESOURCES, f"more than {max_results} matches; narrow the query"), None
            return
        if event.is_cancelled:
            yield CANCEL, None
            return
        yield PENDING, identifier
    yield SUCCESS, None


def query_level(identifier: Dataset, model: str) -> Level:
    """The identifier's QueryRetrieveLevel, checked against the information model (PS3.4 C.6)."""
    level = parse_level(identifier.get("QueryRetrieveLevel"))
    if level is Level.PATIENT and model in _STUDY_ROOT_MODELS:
        raise UnknownQueryLevel("the Study Root information model has no PATIENT level")
    return level


def text(element: DataElement) -> str:
    """A request element's value as DICOM text, the form the core matches on."""
    value = element.value
    if element.VR == "SQ" or value is None or isinstance(value, bytes):
        return ""
    if isinstance(value, (MultiValue, list)):
        return "\\".join(str(v) for v in value)
    return str(value)


def response(level: Level, requested: list[DataElement], row: dict[str, str], ae_title: str) -> Dataset:
    """Exactly the requested keys, valued from the index row (empty where it has none)."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"  # the index holds unicode
    ds.QueryRetrieveLevel = level.value
    ds.RetrieveAETitle = ae_title
    for element in requested:
        vr = element.VR.split(" or ")[0]  # an ambiguous dictionary VR cannot be written explicitly
        ds.add_new(element.tag, vr, _typed(vr, row.get(element.keyword, "")))
    return ds


def _typed(vr: str, value: str) -> Any:
    if vr == "SQ":
        return []
    if not value:
        return None
    parts = value.split("\\")
    if vr in _BINARY_VRS:
        return _one_or_many([_BINARY_VRS[vr](p) for p in parts])
    return _one_or_many(parts)


def _one_or_many(values: list[Any]) -> Any:
    return values if len(values) > 1 else values[0]
