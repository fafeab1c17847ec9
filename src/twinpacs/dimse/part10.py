"""A received C-STORE data set as a Part 10 object, its file meta encoded directly.

pynetdicom's Event.encoded_dataset() builds the file meta as a pydicom FileMetaDataset (every
UID validated) and encodes it with pydicom: ~0.4 ms of each C-STORE here. The file meta is
seven elements of Explicit VR Little Endian (PS3.10 7.1), so the same bytes are written here."""

from __future__ import annotations

import struct
from io import BytesIO
from typing import cast

from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.events import Event

_PREAMBLE = b"\0" * 128 + b"DICM"
_VERSION = struct.pack("<HH2sHI", 0x0002, 0x0001, b"OB", 0, 2) + b"\x00\x01"


def _element(number: int, vr: bytes, value: str) -> bytes:
    body = value.encode("ascii")
    if len(body) % 2:
        body += b"\0" if vr == b"UI" else b" "
    return struct.pack("<HH2sH", 0x0002, number, vr, len(body)) + body


_IMPLEMENTATION = (_element(0x0012, b"UI", PYNETDICOM_IMPLEMENTATION_UID)
                   + _element(0x0013, b"SH", PYNETDICOM_IMPLEMENTATION_VERSION))


def part10(sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str, dataset: bytes) -> bytes:
    """Preamble, 'DICM', file meta (with pynetdicom's implementation UID and version), data set."""
    meta = b"".join((_VERSION, _element(0x0002, b"UI", sop_class_uid), _element(0x0003, b"UI", sop_instance_uid),
                     _element(0x0010, b"UI", transfer_syntax), _IMPLEMENTATION))
    return b"".join((_PREAMBLE, struct.pack("<HH2sHI", 0x0002, 0x0000, b"UL", 4, len(meta)), meta, dataset))


def received_object(event: Event) -> bytes:
    """What Event.encoded_dataset() returns for a C-STORE request, byte for byte."""
    request = cast(C_STORE, event.request)
    return part10(str(request.AffectedSOPClassUID), str(request.AffectedSOPInstanceUID),
                  str(event.context.transfer_syntax), cast(BytesIO, request.DataSet).getvalue())
