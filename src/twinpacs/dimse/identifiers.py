"""C-FIND response identifiers encoded directly from the index's text, without pydicom.

Building a pydicom Dataset per match (every element validated) and having pynetdicom encode
it with pydicom cost ~0.35 ms per match here, most of a C-FIND's server time. A response
identifier is a few elements of text and a handful of binary VRs, so it is encoded here in
the presentation context's transfer syntax (Implicit or Explicit VR Little Endian) and handed
to pynetdicom as an `EncodedIdentifier`, whose bytes its C-FIND service class sends as they
are once `install` has run. Anything else (another syntax, a VR not handled here, pynetdicom
logging identifiers, which it prints from a Dataset) takes the pydicom path."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import service_class

# Explicit VR: these have a 4-byte length after two reserved bytes (PS3.5 7.1.2).
_LONG_LENGTH_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"})
_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI",
                       "UR", "UT"})
_BINARY_FORMATS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "UV": "Q", "SV": "q", "FL": "f", "FD": "d"}

_installed = False


class EncodedIdentifier(Dataset):
    """An identifier already encoded; pynetdicom sends `encoded` where it would encode a Dataset."""

    def __init__(self, encoded: bytes, implicit_vr: bool) -> None:
        super().__init__()
        self.encoded = encoded
        self.implicit_vr = implicit_vr


def installed() -> bool:
    return _installed


def install() -> None:
    """Process-wide: pynetdicom's C-FIND service class sends an EncodedIdentifier's bytes when
    they are in the context's transfer syntax; every other Dataset is encoded as before."""
    global _installed
    if _installed:
        return
    original = service_class.encode

    def encode(ds: Dataset, is_implicit_vr: bool, is_little_endian: bool, deflated: bool = False) -> bytes | None:
        if (isinstance(ds, EncodedIdentifier) and ds.implicit_vr == is_implicit_vr and is_little_endian
                and not deflated):
            return ds.encoded
        return original(ds, is_implicit_vr, is_little_endian, deflated)

    service_class.encode = encode
    _installed = True


def encode_identifier(elements: Iterable[tuple[int, str, str]], implicit_vr: bool) -> bytes | None:
    """(tag, VR, value as DICOM text: multiple values joined by backslashes) -> the encoded
    data set in tag order, text in UTF-8 (the response says ISO_IR 192); None when an element
    needs pydicom (a VR not handled here, a value too long for its length field)."""
    parts = []
    for tag, vr, value in sorted(elements):
        body = _value(vr, value)
        if body is None:
            return None
        if len(body) % 2:
            body += b"\0" if vr == "UI" else b" "
        group, element = tag >> 16, tag & 0xFFFF
        if implicit_vr:
            parts.append(struct.pack("<HHI", group, element, len(body)))
        elif vr in _LONG_LENGTH_VRS:
            parts.append(struct.pack("<HH2sHI", group, element, vr.encode(), 0, len(body)))
        elif len(body) > 0xFFFF:
            return None
        else:
            parts.append(struct.pack("<HH2sH", group, element, vr.encode(), len(body)))
        parts.append(body)
    return b"".join(parts)


def _value(vr: str, value: str) -> bytes | None:
    if vr == "SQ" or not value:
        return b""  # an empty sequence; an empty value is a zero-length element
    if vr in _TEXT_VRS:
        return value.encode("utf-8")
    fmt = _BINARY_FORMATS.get(vr)
    if fmt is None:
        return None
    convert: Any = float if fmt in "fd" else int
    numbers = [convert(v) for v in value.split("\\")]
    return struct.pack(f"<{len(numbers)}{fmt}", *numbers)
