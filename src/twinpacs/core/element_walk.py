"""The top-level elements of a plain little endian dataset, as pydicom's reader gives them.

pydicom's data_element_generator costs ~1.5 µs an element (a file object, a debug branch,
stop_when calls); a CT object has 60 elements, and its file meta is read the same way. This
walk builds the same RawDataElements from the bytes in place, for the common shape only:
defined lengths, known VRs, nothing cut short. Anything else returns None, and the caller
lets pydicom read it, so every odd case is read, or refused, exactly as before."""

from __future__ import annotations

import struct
from typing import Any

from pydicom.dataelem import RawDataElement, empty_value_for_VR
from pydicom.filereader import ENCODED_VR
from pydicom.tag import BaseTag
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

UNDEFINED_LENGTH = 0xFFFFFFFF
_ITEM_DELIMITER = 0xFFFEE00D

# Element headers (PS3.5 7.1): implicit VR is tag and 4-byte length; explicit VR is tag, VR
# and a 2-byte length, or 2 reserved bytes and a 4-byte length for EXPLICIT_VR_LENGTH_32.
_IMPLICIT_HEADER = struct.Struct("<HHL").unpack_from
_EXPLICIT_HEADER = struct.Struct("<HH2sH").unpack_from
_LENGTH_32 = struct.Struct("<L").unpack_from
_VR_OF = {code: code.decode() for code in ENCODED_VR if len(code) == 2}


def walk(
    body: bytes, start: int, implicit: bool, only_group: int | None = None
) -> tuple[dict[BaseTag, Any], int] | None:
    """The elements from `start` by tag, and where the walk ended: at the end of `body`, or
    with `only_group` before the first element of another group (as pydicom reads the file
    meta). None when pydicom's reader is needed."""
    elements: dict[BaseTag, Any] = {}
    position, end = start, len(body)
    while position < end:
        if end - position < 8:
            return None
        vr: str | None
        if implicit:
            group, element, length = _IMPLICIT_HEADER(body, position)
            vr = None
        else:
            group, element, code, length = _EXPLICIT_HEADER(body, position)
            vr = _VR_OF.get(code)
        number = group << 16 | element
        if only_group is not None and group != only_group:
            # pydicom reads this header whole (12 bytes at most), then rewinds to it, unless
            # it is an item delimiter.
            return (elements, position) if end - position >= 12 and number != _ITEM_DELIMITER else None
        position += 8
        if not implicit:
            if vr is None:
                return None
            if vr in EXPLICIT_VR_LENGTH_32:
                if end - position < 4:
                    return None
                (length,) = _LENGTH_32(body, position)
                position += 4
        if length == UNDEFINED_LENGTH or number == _ITEM_DELIMITER or end - position < length:
            return None
        tag = BaseTag(number)
        value = body[position:position + length] if length else empty_value_for_VR(vr, raw=True)
        elements[tag] = RawDataElement(tag, vr, length, value, position, implicit, True)
        position += length
    return elements, position
