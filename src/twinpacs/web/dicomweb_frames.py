"""WADO-RS frames and rendered resources (PS3.18 10.4).

Frames go out as stored when Accept allows it: native pixel bytes as
application/octet-stream, compressed ones in their bitstream's media type (image/jpeg,
image/jp2, ...). application/octet-stream without transfer-syntax=* means uncompressed
(PS3.18 8.7.3), so compressed frames are then decoded."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core.archive import Archive
from ..core.model import StoredInstance
from ..errors import InvalidInput
from .context import archive_of, find_instances, read_dataset
from .errors import NotAcceptable
from .media import (EXPLICIT_VR_LE, OCTET_STREAM, MediaRange, accepted, frame_media_type,
                    is_native_little_endian)
from .multipart import encode_parts, new_boundary, related_content_type
from .pixels import decoded_frames, frame_count, parse_frame_list, stored_frames
from .rendering import JPEG, PNG, parse_options, render


def choose_frames(ranges: list[MediaRange], transfer_syntax: str) -> tuple[bool, str]:
    """(decode?, part Content-Type) for the first acceptable range, else 406."""
    stored_type = frame_media_type(transfer_syntax)
    if stored_type is None:
        raise NotAcceptable(f"frames in {transfer_syntax} (video, or a compression without a frame "
                            "media type) cannot be sent one by one")
    native = is_native_little_endian(transfer_syntax)
    label = f"{stored_type}; transfer-syntax={EXPLICIT_VR_LE if native else transfer_syntax}"
    for media in ranges:
        if media.type in ("*/*", "multipart/*"):
            return False, label
        if media.type != "multipart/related":
            continue
        part = media.params.get("type", "*/*").lower()
        wanted = media.params.get("transfer-syntax")
        if part == OCTET_STREAM and wanted == "*":
            return False, f"{OCTET_STREAM}; transfer-syntax={EXPLICIT_VR_LE if native else transfer_syntax}"
        if part == OCTET_STREAM and wanted in (None, EXPLICIT_VR_LE):
            return not native, f"{OCTET_STREAM}; transfer-syntax={EXPLICIT_VR_LE}"
        if MediaRange(part).matches(stored_type) and wanted in (None, "*", transfer_syntax):
            return False, label
    raise NotAcceptable(f"the frames are stored as {stored_type} ({transfer_syntax}); Accept "
                        'allows neither that nor uncompressed application/octet-stream')


async def frames(request: Request) -> Response:
    return await _frames(request, parse_frame_list(request.path_params["frames"]))


async def all_frames(request: Request) -> Response:
    """Every frame: Pixel Data asked for as bulk data."""
    return await _frames(request, [])


async def _frames(request: Request, numbers: list[int]) -> Response:
    (instance,) = await find_instances(request)
    decode, part_type = choose_frames(accepted(request), instance.transfer_syntax)
    found = await run_in_threadpool(_read_frames, archive_of(request), instance, numbers, decode)
    boundary = new_boundary()
    return Response(encode_parts([(part_type, frame) for frame in found], boundary),
                    media_type=related_content_type(part_type.split(";")[0], boundary))


def _read_frames(archive: Archive, instance: StoredInstance, numbers: list[int], decode: bool) -> list[bytes]:
    ds = read_dataset(archive, instance)
    numbers = numbers or list(range(1, frame_count(ds) + 1))
    return decoded_frames(ds, numbers) if decode else stored_frames(ds, instance.transfer_syntax, numbers)


def choose_image(ranges: list[MediaRange]) -> str:
    """PNG unless JPEG is preferred: lossless is the safer default for diagnostic images."""
    for media in ranges:
        if media.matches(PNG):
            return PNG
        if media.matches(JPEG):
            return JPEG
    raise NotAcceptable("rendered images are served as image/png or image/jpeg")


async def rendered(request: Request) -> Response:
    numbers = parse_frame_list(request.path_params.get("frames", "1"))
    if len(numbers) != 1:
        raise InvalidInput("a rendered resource is one frame; ask for frames one at a time")
    options = parse_options(dict(request.query_params), choose_image(accepted(request)))
    (instance,) = await find_instances(request)
    archive = archive_of(request)

    def work() -> bytes:
        return render(archive.path(instance) or archive.read(instance), numbers[0], options)

    return Response(await run_in_threadpool(work), media_type=options.media_type)


_INSTANCE = "/studies/{study}/series/{series}/instances/{instance}"
routes = [
    Route(_INSTANCE + "/frames/{frames}", frames, name="frames"),
    Route(_INSTANCE + "/rendered", rendered, name="rendered_instance"),
    Route(_INSTANCE + "/frames/{frames}/rendered", rendered, name="rendered_frame"),
]
