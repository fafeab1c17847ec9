"""Media types: Content-Type and Accept parsing, and the media type of each transfer
syntax's frames (PS3.18 8.7.3.3.2, Table 8.7.3-5)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydicom.uid import UID
from python_multipart.multipart import parse_options_header
from starlette.requests import Request

from ..errors import InvalidInput

EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
DICOM_JSON = "application/dicom+json"
OCTET_STREAM = "application/octet-stream"

# Compressed frames travel in the media type of their bitstream (PS3.18 Table 8.7.3-5).
_FRAME_MEDIA_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx",
    "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
}


@dataclass(frozen=True)
class MediaRange:
    """One entry of an Accept header, or a Content-Type: type/subtype plus parameters."""

    type: str
    params: dict[str, str] = field(default_factory=dict)
    q: float = 1.0

    def matches(self, media_type: str) -> bool:
        """True when this range admits `media_type` ('*/*', 'image/*' or exact)."""
        major = media_type.split("/")[0]
        return self.type in ("*/*", media_type, f"{major}/*")


def parse_media_type(value: str) -> MediaRange:
    media, params = parse_options_header(value)
    return MediaRange(media.decode("latin-1").strip(),
                      {k.decode("latin-1"): v.decode("latin-1") for k, v in params.items()})


_RANGES = re.compile(r'(?:[^,"]|"[^"]*")+')


def accepted(request: Request) -> list[MediaRange]:
    """The Accept header's media ranges, most preferred first (RFC 9110 12.5.1); no header
    accepts anything."""
    header = request.headers.get("accept", "").strip()
    if not header:
        return [MediaRange("*/*")]
    ranges = []
    for text in _RANGES.findall(header):
        if not text.strip():
            continue
        media = parse_media_type(text)
        try:
            q = float(media.params.pop("q", "1"))
        except ValueError:
            raise InvalidInput(f"Accept: {text.strip()!r} has a q value that is not a number") from None
        if q > 0:
            ranges.append(MediaRange(media.type, media.params, q))
    return sorted(ranges, key=lambda r: -r.q)  # sorted() is stable: header order breaks ties


def admits(media: MediaRange, part_type: str) -> bool:
    """Whether an Accept range admits a multipart/related response of `part_type` parts
    (PS3.18 8.7.3); a bare `part_type` range is taken to ask for the same."""
    if media.type in ("*/*", "multipart/*"):
        return True
    if media.type == "multipart/related":
        return MediaRange(media.params.get("type", "*/*").lower()).matches(part_type)
    return media.type == part_type


def frame_media_type(transfer_syntax: str) -> str | None:
    """Media type of a frame stored in `transfer_syntax`; None for video and for compressions
    that have no frame media type."""
    if transfer_syntax in _FRAME_MEDIA_TYPES:
        return _FRAME_MEDIA_TYPES[transfer_syntax]
    return OCTET_STREAM if not UID(transfer_syntax).is_compressed else None


def is_native_little_endian(transfer_syntax: str) -> bool:
    """Uncompressed little-endian pixel data: its bytes are the octet-stream frames as they are."""
    uid = UID(transfer_syntax)
    return not uid.is_compressed and uid.is_little_endian


def accepts_json(request: Request) -> bool:
    return any(r.matches(DICOM_JSON) or r.matches("application/json") for r in accepted(request))
