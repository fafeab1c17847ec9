"""C-GET and C-MOVE (PS3.4 C.4.2, C.4.3): resolve the identifier to stored instances, then
yield each one's stored file so it leaves byte for byte as it arrived; a study corrected since
(reconciliation, A40 merge) leaves with its corrected attributes instead (core/corrected.py)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import build_context
from pynetdicom.events import Event

from ..core.archive import Archive
from ..core.model import UNIQUE_KEY, Level, StoredInstance
from ..core.parsing import check_uid
from ..core.query import Match, MatchKind, Query
from ..errors import MissingAttribute, NotFound
from .handlers import query_level, text
from .scu import Remote, move_destination_kwargs, storage_contexts
from .status import CANCEL, PENDING, failure
from .transport import StoredFile
from .uids import Verification

log = logging.getLogger(__name__)

_UID_KEYS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
_Yield = Any  # pynetdicom's protocol: destination, then a count, then (status, dataset) pairs


def resolve(archive: Archive, identifier: Dataset, model: str) -> list[StoredInstance]:
    """The current instances an identifier names: by PatientID at PATIENT level, otherwise by
    the level's unique key, narrowed by any higher-level UIDs given (lists allowed)."""
    level = query_level(identifier, model)
    if level is Level.PATIENT:
        patient_id = text(identifier["PatientID"]) if "PatientID" in identifier else ""
        if not patient_id:
            raise MissingAttribute("PatientID is required to retrieve at PATIENT level")
        # An exact match: a retrieval names a patient, it does not search with wildcards.
        query = Query(Level.STUDY, (Match("PatientID", MatchKind.SINGLE, (patient_id,)),), ("StudyInstanceUID",))
        uids = {"StudyInstanceUID": "\\".join(row["StudyInstanceUID"] for row in archive.find(query))}
        if not uids["StudyInstanceUID"]:
            return []
    else:
        uids = {key: _uid_list(identifier, key) for key in _UID_KEYS}
        if not uids[UNIQUE_KEY[level]]:
            raise MissingAttribute(f"{UNIQUE_KEY[level]} is required to retrieve at {level.value} level")
    try:
        return archive.instances(uids["StudyInstanceUID"], uids.get("SeriesInstanceUID", ""),
                                 uids.get("SOPInstanceUID", ""))
    except NotFound:
        return []


def _uid_list(identifier: Dataset, keyword: str) -> str:
    value = text(identifier[keyword]) if keyword in identifier else ""
    uids = [uid.strip() for uid in value.split("\\") if uid.strip()]
    return "\\".join(check_uid(keyword, uid) for uid in uids)


def handle_get(event: Event, archive: Archive) -> Iterator[_Yield]:
    try:
        instances = resolve(archive, event.identifier, str(event.request.AffectedSOPClassUID))
    except Exception as exc:
        yield 1  # pynetdicom reads a count before any status
        yield failure(exc, "C-GET"), None
        return
    yield len(instances)
    yield from _send(event, archive, instances)


def handle_move(event: Event, archive: Archive, destinations: dict[str, Remote]) -> Iterator[_Yield]:
    destination = (event.move_destination or "").strip()
    if destination not in destinations:
        log.warning("C-MOVE to unknown destination %r refused", destination)
        yield None, None  # pynetdicom answers 0xA801 Move destination unknown
        return
    to = destinations[destination]
    try:
        instances = resolve(archive, event.identifier, str(event.request.AffectedSOPClassUID))
    except Exception as exc:
        # pynetdicom takes a destination and a count, then associates, and only then a status:
        # a Verification-only association (any storage SCP should accept one) is the price.
        yield to.host, to.port, move_destination_kwargs(to, [build_context(Verification)])
        yield 1
        yield failure(exc, "C-MOVE"), None
        return
    yield to.host, to.port, move_destination_kwargs(to, storage_contexts(instances))
    yield len(instances)
    yield from _send(event, archive, instances)


def _send(event: Event, archive: Archive, instances: list[StoredInstance]) -> Iterator[_Yield]:
    corrections = archive.corrections(instances)
    for instance in instances:
        if event.is_cancelled:
            yield CANCEL, None
            return
        yield PENDING, _stored(archive, instance, corrections.get(instance.study_instance_uid, {}))


def _stored(archive: Archive, instance: StoredInstance, values: dict[str, str]) -> Dataset:
    path = archive.path(instance)
    if path is not None:
        return StoredFile(path, instance, archive.read_for_client(instance, values) if values else None)
    return dcmread(io.BytesIO(archive.read_for_client(instance, values)))  # a store without files (memory)

