"""DIMSE-C command sets encoded and decoded without building a pydicom Dataset per command.

pynetdicom turns each primitive into a pydicom Dataset, validates every UID and encodes it
twice (once to measure the group length): ~2 ms of Python per message here, paid for every
C-STORE sub-operation of a C-GET/C-MOVE, every C-GET/C-MOVE pending response and every
C-STORE/C-FIND response. A command set is a handful of Implicit VR Little Endian elements
of group 0000 (PS3.7 6.3.1, 9.3), so it is encoded directly here; the message then goes out
straight to the socket (dimse/pdata_writer.py), or else through pynetdicom's own DUL queue
exactly as its `DIMSEServiceProvider.send_msg` would send it.
Incoming messages likewise: pynetdicom decodes each command set with pydicom and copies it
element by element into a primitive (~0.14 ms per C-STORE here); `Receiver` reads the same
elements directly and hands pynetdicom the same primitive. Anything outside the simple cases
(N-services, AT values, an element these tables do not know) falls back to pynetdicom.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

from pynetdicom import _config, evt
from pynetdicom import dimse_primitives as prim
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_messages import _COMMAND_SET_KEYWORDS, _DATASET_KEYWORDS, _MESSAGE_TYPES
from pynetdicom.pdu_primitives import P_DATA

from .pdata_writer import PDataWriter

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
# Received: element number -> (keyword, VR); command field -> (primitive class, message name).
_RECEIVED = {number: (keyword, vr) for keyword, (number, vr) in _ELEMENTS.items()}
_RECEIVED_TYPES = {field: (cls, name.replace("-", "_")) for field, (name, _) in _MESSAGE_TYPES.items()
                   for cls in _C_SERVICES if name.startswith(cls.__name__.replace("_", "-") + "-")}
_NOT_PRIMITIVE_KEYWORDS = {"CommandField", "CommandDataSetType"}


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


def decode_command(command: bytes) -> dict[str, Any] | None:
    """The elements of an Implicit VR Little Endian command set by keyword; None when one is
    not a plain DIMSE-C element (unknown, AT, several values, empty) or the set is malformed."""
    values: dict[str, Any] = {}
    offset, end = 0, len(command)
    while offset < end:
        if end - offset < 8:
            return None
        group, number, length = struct.unpack_from("<HHI", command, offset)
        offset += 8
        value = command[offset:offset + length]
        offset += length
        if group != 0x0000 or offset > end:
            return None
        if number == 0x0000:  # Command Group Length
            continue
        known = _RECEIVED.get(number)
        if known is None or length == 0:
            return None
        keyword, vr = known
        if vr == "US":
            if length != 2:
                return None
            values[keyword] = struct.unpack("<H", value)[0]
            continue
        try:
            text = value.decode("ascii").rstrip("\0 ")
        except UnicodeDecodeError:
            return None
        if "\\" in text:
            return None
        values[keyword] = text.lstrip(" ") if vr == "AE" else text
    return values


def to_primitive(command: bytes, dataset: bytes, context_id: int) -> Any:
    """The primitive pynetdicom's DIMSEMessage.message_to_primitive makes of this message, or
    None when it is left to pynetdicom. Values go through the primitive's own validating setters."""
    values = decode_command(command)
    if values is None or values.get("CommandField") not in _RECEIVED_TYPES or "CommandDataSetType" not in values:
        return None
    cls, name = _RECEIVED_TYPES[values["CommandField"]]
    primitive = cls()
    for keyword, value in values.items():
        if keyword not in _NOT_PRIMITIVE_KEYWORDS and hasattr(primitive, keyword):
            setattr(primitive, keyword, value)
    dataset_keyword = _DATASET_KEYWORDS.get(name)
    if dataset_keyword:
        setattr(primitive, dataset_keyword, BytesIO(dataset))
    primitive._context_id = context_id
    primitive._dataset_path = primitive._dataset_file = None
    return primitive


class Receiver:
    """DIMSEServiceProvider.receive_primitive for one association: collects a message's PDVs
    (PS3.8 E.2) and, once it is whole, queues its primitive as pynetdicom would, decoded by
    `to_primitive`; a message it leaves to pynetdicom is handed over whole, in one P-DATA."""

    def __init__(self, dimse: DIMSEServiceProvider, original: Callable[[P_DATA], None]) -> None:
        self.dimse = dimse
        self.original = original
        self._pdvs: list[tuple[int, bytes]] = []
        self._command: list[bytes] = []
        self._dataset: list[bytes] = []
        self._context_id = 0

    def __call__(self, primitive: P_DATA) -> None:
        for context_id, data in primitive.presentation_data_value_list:
            self._pdvs.append((context_id, data))
            header = data[0]
            if header & 1:  # a command fragment
                self._command.append(data[1:])
                if header & 2:
                    self._context_id = context_id
                    if not _has_dataset(b"".join(self._command)):
                        self._complete()
            else:
                self._dataset.append(data[1:])
                if header & 2:
                    self._complete()

    def _complete(self) -> None:
        pdvs, command, dataset = self._pdvs, b"".join(self._command), b"".join(self._dataset)
        self._pdvs, self._command, self._dataset = [], [], []
        primitive = to_primitive(command, dataset, self._context_id)
        if primitive is None:
            whole = P_DATA()
            whole.presentation_data_value_list.extend(pdvs)
            self.original(whole)
            return
        cancels = self.dimse.cancel_req
        if isinstance(primitive, prim.C_CANCEL) and len(cancels) < 10:
            cancels[primitive.MessageIDBeingRespondedTo] = primitive  # as pynetdicom keeps them
        else:
            self.dimse.msg_queue.put((self._context_id, primitive))


def _has_dataset(command: bytes) -> bool:
    """Whether a data set follows the command: CommandDataSetType other than 0x0101 (PS3.7
    E.1); without one the message ends here and goes to pynetdicom, which refuses it."""
    offset = 0
    while offset + 8 <= len(command):
        _, number, length = struct.unpack_from("<HHI", command, offset)
        if number == 0x0800 and length == 2:
            return bool(struct.unpack_from("<H", command, offset + 8)[0] != _NO_DATASET)
        offset += 8 + length
    return False


def install(dimse: DIMSEServiceProvider) -> None:
    """Send this association's DIMSE-C messages through the direct encoder, one whole message
    at a time: two threads may send on one association (a handler's responses and a Storage
    Commitment N-EVENT-REPORT, or pynetdicom's N-EVENT-REPORT handler thread and a C-STORE),
    and pynetdicom queues each message's PDUs one by one, so they could interleave and the
    peer would read a data set under another message's command (PS3.7 forbids that)."""
    original: Callable[[Any, int], None] = dimse.send_msg
    one_at_a_time = threading.Lock()
    writer = PDataWriter(dimse.dul)

    def send_msg(primitive: Any, context_id: int) -> None:
        with one_at_a_time:
            try:
                command, dataset = encode_command(primitive)
            except Unsupported:
                original(primitive, context_id)
                return
            if writer.write(context_id, p_data_values(command, dataset, dimse.maximum_pdu_size)):
                return
            for pdv in p_data_values(command, dataset, dimse.maximum_pdu_size):
                pdata = P_DATA()
                pdata.presentation_data_value_list.append((context_id, pdv))
                dimse.dul.send_pdu(pdata)

    dimse.send_msg = send_msg  # type: ignore[method-assign]
    # pynetdicom's own decoding where something watches its messages or files data sets.
    if not dimse.assoc.get_handlers(evt.EVT_DIMSE_RECV) and not _config.STORE_RECV_CHUNKED_DATASET:
        dimse.receive_primitive = Receiver(dimse, dimse.receive_primitive)  # type: ignore[method-assign]
