"""STOW-RS, the Store transaction (PS3.18 10.5).

The whole multipart body is read and checked first: a malformed body (400), a part of a
type other than application/dicom (415), a body over limits.max_upload_bytes (413, refused
from its Content-Length or as soon as the bytes read pass the limit) or a sender silent for
limits.request_timeout_s mid-body (408) stores nothing. The parts are then stored by the
archive together in a worker thread (G3: files in parallel, index rows in one transaction) and
each acknowledged only from its own StoreResult (G1)."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import pydicom
from pydicom.dataset import Dataset
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core.archive import StoreResult, StoreStatus
from ..core.parsing import check_uid
from ..errors import InvalidInput, TwinpacsError
from .context import Urls, archive_of
from .dicomjson import DicomJSONResponse, unchecked_element
from .errors import UnsupportedMediaType
from .media import parse_media_type
from .body import bounded_body
from .multipart import Part, read_parts

log = logging.getLogger(__name__)

DICOM = "application/dicom"
# Failure and warning reasons (PS3.18 10.5.3, the C-STORE statuses of PS3.4 Annex B).
PROCESSING_FAILURE = 0x0110
COERCED = 0xB000  # what this UID now retrieves is not what was sent (a kept conflict)


@dataclass(frozen=True)
class Outcome:
    """What became of one part: the UIDs it declares (best effort) and its status."""

    sop_class: str
    sop_instance: str
    study: str
    series: str
    stored: bool
    reason: int | None = None  # FailureReason when not stored, WarningReason when stored
    comment: str = ""


async def store_instances(request: Request) -> Response:
    target = request.path_params.get("study", "")
    if target:
        check_uid("StudyInstanceUID", target)
    archive = archive_of(request)
    origin = _replication_origin(request)
    archive.ensure_accepting(origin)  # a standby site answers 503 naming the active site
    parts = await _read_body(request)
    source = f"STOW:{request.client.host if request.client else 'unknown'}"
    datas = [bytes(part.body) for part in parts]
    parts.clear()  # one copy of the body in memory, not two
    results = await run_in_threadpool(archive.store_many, datas, source, origin, target)
    outcomes = [_outcome(data, result, source) for data, result in zip(datas, results)]
    return _response(Urls(request), outcomes, target)


def _replication_origin(request: Request) -> str | None:
    """The peer a replicated object comes from (X-Twinpacs-Origin), honoured only when it
    names a configured peer: an arbitrary client cannot get past a standby site's refusal."""
    origin = request.headers.get("X-Twinpacs-Origin")
    peers = {peer.name for peer in request.app.state.site.settings.peers}
    return origin if origin in peers else None


async def _read_body(request: Request) -> list[Part]:
    header = request.headers.get("content-type", "")
    if not header:
        raise InvalidInput('STOW-RS needs Content-Type: multipart/related; type="application/dicom"')
    media = parse_media_type(header)
    if media.type != "multipart/related":
        raise UnsupportedMediaType(f'STOW-RS takes multipart/related; type="application/dicom", not {media.type}')
    root = media.params.get("type", DICOM).lower()
    if root != DICOM:
        raise UnsupportedMediaType(f"this origin server stores application/dicom parts only, not {root}")
    boundary = media.params.get("boundary", "")
    if not boundary:
        raise InvalidInput("the multipart/related Content-Type has no boundary parameter")
    limits = request.app.state.site.settings.limits
    parts = await read_parts(bounded_body(request, limits.max_upload_bytes, limits.request_timeout_s,
                                          "limits.max_upload_bytes"), boundary)
    if not parts:
        raise InvalidInput("the multipart body has no parts")
    for number, part in enumerate(parts, 1):
        part_type = part.content_type(DICOM).type
        if part_type != DICOM:
            raise UnsupportedMediaType(f"part {number} is {part_type}; every part must be {DICOM}")
    return parts


def _outcome(data: bytes, result: StoreResult | Exception, source: str) -> Outcome:
    if isinstance(result, StoreResult):
        coerced = result.status is StoreStatus.CONFLICT  # stored, but the UID now retrieves other content
        return Outcome(result.sop_class_uid, result.sop_instance_uid, result.study_uid, result.series_uid, True,
                       COERCED if coerced else None, result.message if coerced else "")
    ids = _identify(data)
    if isinstance(result, TwinpacsError):
        return _failed(ids, result.dimse_status, result.message)
    log.error("STOW-RS could not store an instance from %s: %s", source, result)
    return _failed(ids, PROCESSING_FAILURE, "processing failure; the server log has the details")


_IDENTITY = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")


def _identify(data: bytes) -> Outcome:
    """The UIDs a part declares, read from its header, for the response; empty if unreadable.
    Validation is the archive's: anything unreadable here fails its parse too."""
    try:  # pydicom decodes elements when they are read, so a corrupt one raises there, anything
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=list(_IDENTITY))
        sop_class, sop_instance, study, series = (str(ds.get(keyword, "")) for keyword in _IDENTITY)
    except Exception:
        return Outcome("", "", "", "", stored=False)
    return Outcome(sop_class, sop_instance, study, series, stored=False)


def _failed(ids: Outcome, reason: int, comment: str) -> Outcome:
    return Outcome(ids.sop_class, ids.sop_instance, ids.study, ids.series, False, reason, comment)


def _response(urls: Urls, outcomes: list[Outcome], target: str) -> Response:
    """PS3.18 10.5.3: 200 all stored, 202 stored with warnings or failures, 409 none stored."""
    stored = [o for o in outcomes if o.stored]
    failed = [o for o in outcomes if not o.stored]
    body = Dataset()
    studies = {o.study for o in stored}
    if target or len(studies) == 1:
        body.RetrieveURL = urls.study(target or studies.pop())
    if stored:
        body.ReferencedSOPSequence = [_item(o, urls) for o in stored]
    if failed:
        body.FailedSOPSequence = [_item(o, None) for o in failed]
    if not failed and all(o.reason is None for o in stored):
        status = 200
    else:
        status = 202 if stored else 409
    return DicomJSONResponse(body.to_json_dict(), status_code=status)


def _item(outcome: Outcome, urls: Urls | None) -> Dataset:
    item = Dataset()
    item.add(unchecked_element("ReferencedSOPClassUID", outcome.sop_class))
    item.add(unchecked_element("ReferencedSOPInstanceUID", outcome.sop_instance))
    if urls is not None:
        item.RetrieveURL = urls.instance(outcome.study, outcome.series, outcome.sop_instance)
        if outcome.reason is not None:
            item.WarningReason = outcome.reason
    else:
        item.FailureReason = outcome.reason
    if outcome.comment:  # Error Comment, as in C-STORE responses: the reason in words
        item.add(unchecked_element("ErrorComment", outcome.comment))
    return item


routes = [
    Route("/studies", store_instances, methods=["POST"], name="store_instances"),
    Route("/studies/{study}", store_instances, methods=["POST"], name="store_study_instances"),
]
