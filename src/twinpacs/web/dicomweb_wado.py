"""WADO-RS, the Retrieve transaction (PS3.18 10.4): instances, metadata and bulk data.

Instances are streamed as stored, byte for byte, in worker-thread reads (G3); this server
does not transcode, so an Accept naming another transfer syntax is a 406. A study corrected
since (reconciliation, A40 merge) is streamed with its corrected attributes in place: a new
head, then the stored file's own remainder (core/corrected.py). Frames and rendered images
are in dicomweb_frames."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..core.archive import Archive
from ..core.event_watch import RetrievalLog
from ..core.model import StoredInstance
from ..errors import InvalidInput, NotFound
from ..index.corrections import study_overrides_of
from .api_prefetch import note_opened
from .context import Urls, archive_of, find_instances, metadata_cache, read_dataset
from .dicomjson import metadata_json, texts_to_json, with_corrections
from .dicomweb_frames import all_frames
from .errors import NotAcceptable
from .media import DICOM_JSON, OCTET_STREAM, MediaRange, accepted, accepts_json, admits
from .metadata_cache import MetadataCache
from .multipart import PART_END, closing, encode_parts, new_boundary, part_head, related_content_type

DICOM = "application/dicom"
CHUNK = 1 << 20
# Bytes read per worker-thread hop, held once per retrieval in progress. Each batch is sent
# before the next is read; 8 MB rather than 4 took a 6.6 MB study from 18.6-20.3 ms to
# 13.2-15.0 ms here (server CPU 13.8-17.3 -> 8.3-9.0 ms).
BATCH = 8 << 20
PIXEL_DATA = 0x7FE00010


def _admits_stored(media: MediaRange, syntaxes: set[str]) -> bool:
    """PS3.18 8.7.3: transfer-syntax=* asks for the stored syntax; an absent one is
    taken the same way here (the object as stored), a named one must be the stored one."""
    wanted = media.params.get("transfer-syntax", "*")
    return admits(media, DICOM) and (wanted == "*" or syntaxes == {wanted})


async def retrieve(request: Request) -> Response:
    started = time.monotonic()
    instances = await find_instances(request)
    syntaxes = {i.transfer_syntax for i in instances}
    if not any(_admits_stored(m, syntaxes) for m in accepted(request)):
        raise NotAcceptable(
            f"stored in transfer syntax {', '.join(sorted(syntaxes))}; this archive returns objects "
            'as stored (Accept: multipart/related; type="application/dicom"; transfer-syntax=*)')
    archive = archive_of(request)
    corrections = await run_in_threadpool(archive.corrections, instances)
    boundary = new_boundary()
    noted = request.app.state.site.retrievals
    # A declared length spares the chunked encoding, which copies every batch once more
    # (~15% of the server's time for a study); a corrected head's length is only known once built.
    headers = None if corrections else {"Content-Length": str(_stored_length(instances, boundary))}
    return StreamingResponse(_stream(archive, instances, corrections, boundary, noted, started),
                             media_type=related_content_type(DICOM, boundary), headers=headers)


def _part_type(instance: StoredInstance) -> str:
    return f"{DICOM}; transfer-syntax={instance.transfer_syntax}"


def _stored_length(instances: list[StoredInstance], boundary: str) -> int:
    """The length of the multipart body of `instances` as stored."""
    return sum(len(part_head(boundary, _part_type(i), i.size)) + i.size + len(PART_END) for i in instances) + \
        len(closing(boundary))


async def _stream(archive: Archive, instances: list[StoredInstance], corrections: dict[str, dict[str, str]],
                  boundary: str, noted: RetrievalLog | None = None, started: float = 0.0) -> AsyncIterator[bytes]:
    """The multipart body, read by worker threads in batches of about BATCH bytes (many small
    instances per threadpool hop, a large one in CHUNK pieces). A slow or failed retrieval is
    noted for the incident watcher (core/event_watch.py)."""
    batches = _batches(archive, instances, corrections, boundary, noted)
    try:
        while batch := await run_in_threadpool(next, batches, b""):
            yield batch
    finally:
        await run_in_threadpool(batches.close)
        if noted is not None and instances:
            noted.finished(instances[0].study_instance_uid, (time.monotonic() - started) * 1000, "WADO-RS")


def _batches(archive: Archive, instances: list[StoredInstance], corrections: dict[str, dict[str, str]],
             boundary: str, noted: RetrievalLog | None = None) -> Iterator[bytes]:
    pieces: list[bytes] = []
    size = 0
    for instance in instances:
        content_type = _part_type(instance)
        values = corrections.get(instance.study_instance_uid)
        resume = 0  # where the stored bytes sent begin
        if values:
            correction = archive.corrected_head(instance, values)
            resume = correction.resume
            pieces += [part_head(boundary, content_type, len(correction.head) + instance.size - resume),
                       correction.head]
            size += len(correction.head)
        else:
            pieces.append(part_head(boundary, content_type, instance.size))
        path = archive.path(instance)
        if path is None:
            pieces.append(archive.read(instance)[resume:])
            size += instance.size - resume
        else:
            try:
                file = open(path, "rb", buffering=0)
            except OSError as exc:  # the stored object is missing or unreadable: the study is unretrievable
                if noted is not None:
                    noted.failed(instance.study_instance_uid, instance.sop_instance_uid,
                                 f"{type(exc).__name__}: {exc.strerror or exc}", "WADO-RS")
                raise
            with file:
                file.seek(resume)
                while chunk := file.read(CHUNK):
                    pieces.append(chunk)
                    size += len(chunk)
                    if size >= BATCH:
                        yield b"".join(pieces)
                        pieces, size = [], 0
        pieces.append(PART_END)
    pieces.append(closing(boundary))
    yield b"".join(pieces)


async def metadata(request: Request) -> Response:
    if not accepts_json(request):
        raise NotAcceptable("metadata is served as application/dicom+json only")
    instances = await find_instances(request)
    # Corrections (reconciliation, merges) live in the index, not in the files: one look-up per study.
    corrected = await run_in_threadpool(study_overrides_of, request.app.state.site.index.db, request.path_params["study"])
    body = await run_in_threadpool(_metadata, archive_of(request), metadata_cache(request),
                                   instances, Urls(request), texts_to_json(corrected) if corrected else None)
    # A study's metadata is what a viewer asks first when it opens it: noted for the prefetch
    # hit rate after the response has gone.
    opened = note_opened(request, request.path_params["study"]) if "series" not in request.path_params else None
    return Response(body, media_type=DICOM_JSON, background=opened)


def _metadata(archive: Archive, cache: MetadataCache, instances: list[StoredInstance], urls: Urls,
              corrected: dict[str, object] | None = None) -> bytes:
    """The JSON array, assembled from each instance's cached JSON text (computed from the
    stored object on first use): the same bytes json.dumps of the whole list would give.
    A corrected study's instances get their corrected attributes over the stored ones."""
    parts = []
    for instance in instances:
        base = urls.instance(instance.study_instance_uid, instance.series_instance_uid, instance.sop_instance_uid)
        part = cache.instance_json(
            instance.content_hash, base,
            lambda bulk_uri, instance=instance: metadata_json(read_dataset(archive, instance, defer=True), bulk_uri))
        parts.append(with_corrections(part, corrected) if corrected else part)
    return ("[" + ",".join(parts) + "]").encode("utf-8")


async def bulkdata(request: Request) -> Response:
    """A BulkDataURI of the metadata (PS3.18 10.4): one top-level binary value as
    application/octet-stream. Pixel Data is served as its frames."""
    text = request.path_params["tag"]
    try:
        tag = int(text, 16) if len(text) == 8 else -1
    except ValueError:
        tag = -1
    if tag < 0:
        raise InvalidInput(f"{text!r} is not a tag (8 hexadecimal digits)")
    if tag == PIXEL_DATA:
        return await all_frames(request)
    (instance,) = await find_instances(request)
    ds = await run_in_threadpool(read_dataset, archive_of(request), instance)
    if tag not in ds or not isinstance(ds[tag].value, bytes):
        raise NotFound(f"instance {instance.sop_instance_uid} has no bulk data at ({text[:4]},{text[4:]})")
    if not any(admits(m, OCTET_STREAM) for m in accepted(request)):
        raise NotAcceptable("bulk data is served as multipart/related; type=\"application/octet-stream\"")
    boundary = new_boundary()
    return Response(encode_parts([(OCTET_STREAM, ds[tag].value)], boundary),
                    media_type=related_content_type(OCTET_STREAM, boundary))


_INSTANCE = "/studies/{study}/series/{series}/instances/{instance}"
routes = [
    Route("/studies/{study}", retrieve, name="retrieve_study"),
    Route("/studies/{study}/series/{series}", retrieve, name="retrieve_series"),
    Route(_INSTANCE, retrieve, name="retrieve_instance"),
    Route("/studies/{study}/metadata", metadata, name="study_metadata"),
    Route("/studies/{study}/series/{series}/metadata", metadata, name="series_metadata"),
    Route(_INSTANCE + "/metadata", metadata, name="instance_metadata"),
    Route(_INSTANCE + "/bulkdata/{tag}", bulkdata, name="instance_bulkdata"),
]
