"""multipart/related (RFC 2387) as DICOMweb uses it (PS3.18 8.6.1): reading a request body
with python-multipart's streaming parser, and writing response parts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser

from ..errors import InvalidInput
from .media import MediaRange, parse_media_type


@dataclass
class Part:
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)

    def content_type(self, default: str) -> MediaRange:
        return parse_media_type(self.headers.get("content-type", default))


class _Collector:
    """python-multipart callbacks that gather parts and headers."""

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.ended = False
        self._field = bytearray()
        self._value = bytearray()

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": lambda: self.parts.append(Part()),
            "on_header_field": lambda data, start, end: self._field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_part_data": lambda data, start, end: self.parts[-1].body.extend(data[start:end]),
            "on_end": self._end,
        }

    def _header_end(self) -> None:
        name = self._field.decode("latin-1").strip().lower()
        self.parts[-1].headers[name] = self._value.decode("latin-1").strip()
        self._field.clear()
        self._value.clear()

    def _end(self) -> None:
        self.ended = True


async def read_parts(chunks: AsyncIterator[bytes], boundary: str) -> list[Part]:
    """Every part of a multipart body. A body that does not follow the boundary, or ends
    before the closing delimiter, is refused whole (400), so no part of it is stored."""
    collector = _Collector()
    try:
        parser = MultipartParser(boundary.encode("latin-1"), collector.callbacks())  # type: ignore[arg-type]
        async for chunk in chunks:
            if chunk:
                parser.write(chunk)
    except (MultipartParseError, ValueError, UnicodeEncodeError) as exc:
        raise InvalidInput(f"the body is not multipart/related with boundary {boundary!r}: {exc}") from None
    if not collector.ended:
        raise InvalidInput(f"the multipart body ends before its closing boundary --{boundary}--")
    return collector.parts


def new_boundary() -> str:
    return uuid.uuid4().hex


def related_content_type(part_type: str, boundary: str) -> str:
    return f'multipart/related; type="{part_type}"; boundary={boundary}'


def part_head(boundary: str, content_type: str, length: int | None = None) -> bytes:
    """Delimiter and headers of one part; the part's bytes follow, then PART_END."""
    head = f"--{boundary}\r\nContent-Type: {content_type}\r\n"
    if length is not None:
        head += f"Content-Length: {length}\r\n"
    return (head + "\r\n").encode("latin-1")


PART_END = b"\r\n"


def closing(boundary: str) -> bytes:
    return f"--{boundary}--\r\n".encode("latin-1")


def encode_parts(parts: list[tuple[str, bytes]], boundary: str) -> bytes:
    """A whole multipart body from (content type, bytes) pairs."""
    out = bytearray()
    for content_type, body in parts:
        out += part_head(boundary, content_type, len(body)) + body + PART_END
    return bytes(out + closing(boundary))
