"""Encoding of outgoing DIMSE-C messages without building a pydicom Dataset per command.

pynetdicom turns each primitive into a pydicom Dataset, validates every UID and encodes it
twice (once to measure the group length): ~2 ms of Python per message here, paid for every
C-STORE sub-operation of a C-GET/C-MOVE, every C-GET/C-MOVE pending response and every
C-STORE/C-FIND response. A command set is a handful of Implicit VR Little Endian elements
of group 0000 (PS3.7 6.3.1, 9.3), so it is encoded directly here; the message then goes out
through pynetdicom's own DUL queue exactly as its `DIMSEServiceProvider.send_msg` would send it.
Anything outside the simple cases (N-services, AT values) falls back to pynetdicom.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

from pynetdicom import dimse_primitives as prim
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_messages import _COMMAND_SET_KEYWORDS, _DATASET_KEYWORDS, _MESSAGE_TYPES
from pynetdicom.pdu_primitives import P_DATA

# (element number in group 0000, value representation) of every keyword a DIMSE-C command uses.
_ELEMENTS: dict[str, tuple[int, str]] = {
    "AffectedSOPClassUID": (0x0002, "UI"),
    "CommandField": (0x0100, "US"),
    "MessageID": (0x0110, "US"),
    "MessageIDBeingRespondedTo": (0x0120, "US"),
    "MoveDestination": (0x0600, "AE"),
    "Priority": (0x0700, "US"),
    "CommandDataSetType": (0x0800, "US"),
    "Status": (0x0900, "US"),
    "ErrorComment": (0x0902, "LO"),
    "AffectedSOPInstanceUID": (0x1000, "UI"),
    "NumberOfRemainingSuboperations": (0x1020, "US"),
    "NumberOfCompletedSuboperations": (0x1021, "US"),
    "NumberOfFailedSuboperations": (0x1022, "US"),
    "NumberOfWarningSuboperations": (0x1023, "US"),
    "MoveOriginatorApplicationEntityTitle": (0x1030, "AE"),
    "MoveOriginatorMessageID": (0x1031, "US"),
}
_C_SERVICES = (prim.C_ECHO, prim.C_STORE, prim.C_FIND, prim.C_GET, prim.C_MOVE, prim.C_CANCEL)
_COMMAND_FIELD = {name: field for field, (name, _cls) in _MESSAGE_TYPES.items()}
_DATASET_PRESENT, _NO_DATASET = 0x0001, 0x0101


def _element(number: int, vr: str, value: Any) -> bytes:
    if vr == "US":
        body = struct.pack("<H", int(value))
    else:
        text = str(value).encode("ascii")
        pad = b"\0" if vr == "UI" else b" "
        body = text + pad if len(text) % 2 else text
    return struct.pack("<HHI", 0x0000, number, len(body)) + body


class Unsupported(Exception):
    """This message is left to pynetdicom's own encoder."""


def message_name(primitive: Any) -> str:
    kind = type(primitive).__name__.replace("_", "-")
    if isinstance(primitive, prim.C_CANCEL):
        return "C-CANCEL-RQ"
    return f"{kind}-RQ" if primitive.MessageIDBeingRespondedTo is None else f"{kind}-RSP"


def encode_command(primitive: Any) -> tuple[bytes, Any]:
    """The encoded command set and the message's data set (encoded bytes, a (path, offset)
    pair for a stored file, or None). Raises Unsupported for what is left to pynetdicom."""
    if not isinstance(primitive, _C_SERVICES):
        raise Unsupported(type(primitive).__name__)
    name = message_name(primitive)
    dataset_keyword = _DATASET_KEYWORDS.get(name.replace("-", "_"))
    dataset: Any = getattr(primitive, dataset_keyword) if dataset_keyword else None
    if isinstance(dataset, BytesIO):
        dataset = dataset.getvalue() or None
    path = getattr(primitive, "_dataset_path", None)
    if path is not None:
        dataset = path
    values: dict[str, Any] = {"CommandField": _COMMAND_FIELD[name],
                              "CommandDataSetType": _DATASET_PRESENT if dataset is not None else _NO_DATASET}
    for keyword in _COMMAND_SET_KEYWORDS[name]:
        if keyword in ("CommandGroupLength", "CommandField", "CommandDataSetType"):
            continue
        value = getattr(primitive, keyword, None)
        if value is None:
            continue
        if keyword not in _ELEMENTS:
            raise Unsupported(keyword)  # e.g. OffendingElement (AT)
        values[keyword] = value
    body = b"".join(_element(*_ELEMENTS[k], values[k]) for k in sorted(values, key=lambda k: _ELEMENTS[k][0]))
    group_length = struct.pack("<HHII", 0x0000, 0x0000, 4, len(body))
    return group_length + body, dataset


def p_data_values(command: bytes, dataset: Any, max_pdu: int) -> Iterator[bytes]:
    """Each PDV (message control header + fragment) in sending order, each fitting one PDU
    of `max_pdu` bytes (0: unlimited), as PS3.8 E.2 lays them out."""
    size = (max_pdu - 6) if max_pdu else len(command)
    starts = range(0, len(command), size)
    for start in starts:
        yield (b"\x03" if start == starts[-1] else b"\x01") + command[start:start + size]
    if dataset is None:
        return
    if isinstance(dataset, tuple):  # a stored file: streamed, never held whole in memory
        path, offset = dataset
        with open(Path(path), "rb") as f:
            length = f.seek(0, 2) - f.seek(offset)
            yield from _data_pdvs(f.read, length, max_pdu)
    else:
        yield from _data_pdvs(BytesIO(dataset).read, len(dataset), max_pdu)


def _data_pdvs(read: Callable[[int], bytes], length: int, max_pdu: int) -> Iterator[bytes]:
    size = (max_pdu - 6) if max_pdu else max(length, 1)
    count = max(1, -(-length // size))
    for i in range(count):
        yield (b"\x02" if i == count - 1 else b"\x00") + read(size)


def install(dimse: DIMSEServiceProvider) -> None:
    """Send this association's DIMSE-C messages through the direct encoder, one whole message
    at a time: two threads may send on one association (a handler's responses and a Storage
    Commitment N-EVENT-REPORT, or pynetdicom's N-EVENT-REPORT handler thread and a C-STORE),
    and pynetdicom queues each message's PDUs one by one, so they could interleave and the
    peer would read a data set under another message's command (PS3.7 forbids that)."""
    original: Callable[[Any, int], None] = dimse.send_msg
    one_at_a_time = threading.Lock()

    def send_msg(primitive: Any, context_id: int) -> None:
        with one_at_a_time:
            try:
                command, dataset = encode_command(primitive)
            except Unsupported:
                original(primitive, context_id)
                return
            for pdv in p_data_values(command, dataset, dimse.maximum_pdu_size):
                pdata = P_DATA()
                pdata.presentation_data_value_list.append((context_id, pdv))
                dimse.dul.send_pdu(pdata)

    dimse.send_msg = send_msg  # type: ignore[method-assign]
