"""What every DICOM connection of this site gets when it opens, inbound or outbound.

pynetdicom offers no socket factory, but fires EVT_CONN_OPEN on both sides right after the
TCP connection exists and before the first PDU is sent: the one hook that sees every socket.
"""

from __future__ import annotations

import io
import logging
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, _config, evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dul import DULServiceProvider
from pynetdicom.events import Event
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.presentation import PresentationContext
from pynetdicom.transport import AssociationServer, AssociationSocket

from ..config import LimitSettings
from ..core.model import StoredInstance
from . import fast_messages, identifiers, reactor

log = logging.getLogger(__name__)

class StoredFile(Dataset):
    """A stored Part 10 file to send as it is, yielded where pynetdicom wants a Dataset.

    pynetdicom 3.0.4 can stream a file without decoding it (send_c_store(path) with
    STORE_SEND_CHUNKED_DATASET), but its C-GET/C-MOVE service classes only accept a Dataset
    from the handler and re-encode it. This marker carries the path through them; the
    send_c_store installed by `on_connection_open` sends the file's own bytes, or `data`,
    the object with its study's corrections (core/corrected.py), when there are any."""

    def __init__(self, path: Path, instance: StoredInstance, data: bytes | None = None) -> None:
        super().__init__()
        self.SOPClassUID = instance.sop_class_uid  # the service class reads these on failure
        self.SOPInstanceUID = instance.sop_instance_uid
        self.path = path
        self.data = data
        self.transfer_syntax = instance.transfer_syntax

    def source(self) -> Path | io.BytesIO:
        """What pydicom or pynetdicom reads the object from."""
        return self.path if self.data is None else io.BytesIO(self.data)


def dataset_offset(path: Path) -> int | None:
    """Where the dataset starts in a Part 10 file: after the preamble, 'DICM' and the file
    meta group, whose length element comes first (twinpacs writes it; PS3.10 7.1 requires it).
    None when the file does not start that way."""
    with open(path, "rb") as f:
        return _offset(f.read(144))


def _offset(head: bytes) -> int | None:
    if len(head) < 144 or head[128:132] != b"DICM" or head[132:140] != b"\x02\x00\x00\x00UL\x04\x00":
        return None
    return 144 + int(struct.unpack("<I", head[140:144])[0])


# A-ASSOCIATE-RQ/AC and other non-data PDUs are checked against this floor when the PDU limit
# is lower: 128 presentation contexts with 10 transfer syntaxes each make ~40 kB.
CONTROL_PDU_MAX = 1 << 20
_PDU_TYPES = range(0x01, 0x08)
P_DATA_TF = 0x04
_PDV_ITEM = struct.Struct(">LB")  # item length, presentation context ID
# Handlers that would miss a P-DATA-TF taken past pynetdicom's PDU decoding and state machine.
_RECEIVE_WATCHERS = (evt.EVT_DATA_RECV, evt.EVT_PDU_RECV, evt.EVT_FSM_TRANSITION)


def apply_limits(ae: AE, limits: LimitSettings) -> None:
    """limits.* of the DIMSE door. The receive PDU size is offered in every A-ASSOCIATE and
    enforced on every connection by `on_connection_open`: a large one lets pynetdicom's
    reactor, which handles one PDU per loop and sleeps 1 ms when idle, take an image in one
    PDU rather than dozens. A peer silent for request_timeout_s loses its association."""
    ae.maximum_pdu_size = limits.dicom_max_pdu_bytes
    ae.network_timeout = ae.acse_timeout = ae.dimse_timeout = limits.request_timeout_s


def enable_stored_file_sending() -> None:
    """Process-wide pynetdicom switch: send_c_store(path) streams the file's dataset bytes
    unchanged (only with a presentation context for exactly its transfer syntax)."""
    _config.STORE_SEND_CHUNKED_DATASET = True


def skip_unlogged_dumps() -> None:
    """Process-wide pynetdicom switches, when its logger would drop INFO anyway (`twinpacs
    serve` sets it to WARNING): pynetdicom otherwise decodes and formats every request
    identifier and every C-FIND response, and formats every PDU and DIMSE message, only for
    the logger to discard the lines (~0.3 ms per C-FIND here). C-FIND responses are then
    encoded without pydicom (dimse/identifiers.py): nothing prints them from a Dataset."""
    if logging.getLogger("pynetdicom").isEnabledFor(logging.INFO):
        return
    _config.LOG_HANDLER_LEVEL = "none"
    _config.LOG_REQUEST_IDENTIFIERS = _config.LOG_RESPONSE_IDENTIFIERS = False
    identifiers.install()


def skip_forced_collections() -> None:
    """Process-wide: pynetdicom's association server runs a full gc.collect() every 60th turn
    of its accept loop (every 3 s at a 50 ms poll), for association threads it once saw left
    uncollected. With a site's heap that is a ~70 ms pause holding the GIL, stalling every
    association caught in it (a C-FIND's p95, an ingest); Python's own collector reclaims
    reference cycles without it."""
    AssociationServer.service_actions = lambda self: None  # type: ignore[method-assign]


def on_connection_open(event: Event) -> None:
    """EVT_CONN_OPEN handler for every association, inbound and outbound."""
    sock = event.assoc.dul.socket
    if sock is not None and sock.socket is not None:
        # pynetdicom leaves Nagle on: each small PDU (C-FIND responses, C-STORE acks)
        # would otherwise wait up to 40 ms for the peer's delayed ACK.
        sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    local = event.assoc.acceptor if event.assoc.is_acceptor else event.assoc.requestor
    if local.maximum_length:  # 0: no limit offered, none enforced
        limit_pdu_size(event.assoc.dul, local.maximum_length, event.assoc.is_acceptor)
    fast_messages.install(event.assoc.dimse)  # first: the guard below wraps its decoder
    abort_on_undecodable_messages(event.assoc)
    reactor.install(event.assoc)
    _send_stored_files(event.assoc)


def limit_pdu_size(dul: DULServiceProvider, limit: int, acceptor: bool) -> None:
    """Make this connection refuse a PDU whose header announces more than `limit` bytes (more
    than CONTROL_PDU_MAX for a non-data PDU), and any PDU that does not decode."""
    dul._read_pdu_data = _GuardedReader(dul, limit, acceptor)  # type: ignore[method-assign]


class _GuardedReader:
    """pynetdicom 3.0.4's DUL._read_pdu_data, set on one DUL instance, with four changes:

    - a PDU announcing more than the limit is an invalid PDU (the state machine answers with an
      A-ABORT, PS3.8 9.2 AA-1/AA-8) before any of it is read; pynetdicom would read whatever a
      header announces, up to 4 GiB, into memory;
    - after that refusal nothing more is read: the next read ends the connection, where
      pynetdicom would decode the rest of the peer's bytes as PDUs, six at a time;
    - a connection that ends before its A-ASSOCIATE-RQ releases its association at once:
      pynetdicom's acceptor would wait acse_timeout for the request, holding one of
      dicom.max_associations, so a few junk connections could lock the DICOM door;
    - a P-DATA-TF in the data transfer state goes straight to DIMSE (`_data_transfer`): each
      PDU of a message otherwise became a PDU object, an event on a queue and a state-machine
      transition that does nothing but hand its values on."""

    def __init__(self, dul: DULServiceProvider, limit: int, acceptor: bool) -> None:
        self.dul = dul
        self.limit = limit
        self.refused = False
        self.waiting_for_request = acceptor

    def __call__(self) -> None:
        sock = self.dul.socket
        assert sock is not None
        if self.refused:
            self._closed()
            return
        try:
            header = sock.recv(6)
            if len(header) < 6:
                self._closed()
                return
            pdu_type, _, length = struct.unpack(">BBL", header)
            allowed = self.limit if pdu_type == P_DATA_TF else max(self.limit, CONTROL_PDU_MAX)
            if pdu_type not in _PDU_TYPES or length > allowed:
                self._refuse(sock, f"a PDU of type 0x{pdu_type:02X} announcing {length} bytes (limit {allowed}, "
                                   "limits.dicom_max_pdu_bytes)")
                return
            data = _read_pdu(sock, header, length)
        except (OSError, TimeoutError):
            self._closed()
            return
        if len(data) != 6 + length:
            self._closed()
            return
        if pdu_type == P_DATA_TF and self._data_transfer():
            values = _presentation_data_values(data)
            if values is not None:
                primitive = P_DATA()
                primitive.presentation_data_value_list.extend(values)
                self.dul.assoc.dimse.receive_primitive(primitive)  # what DT-2 does
                return
        try:
            pdu, fsm_event = self.dul._decode_pdu(data)
        except Exception as exc:  # pynetdicom's PDU decoders raise anything on malformed content
            self._refuse(sock, f"a PDU that cannot be decoded ({type(exc).__name__})")
            return
        if pdu_type == 0x01:
            self.waiting_for_request = False
        self.dul.event_queue.put(fsm_event)
        self.dul._recv_pdu.put(pdu)

    def _data_transfer(self) -> bool:
        """Whether a P-DATA-TF may go straight to DIMSE, as the state machine's DT-2 (Sta6 +
        Evt10) would send it, without the PDU object, the event queue and the transition: in
        Sta6 with no event queued before it (the order of events is kept), and with nothing
        watching received data, PDUs or transitions (pynetdicom's INFO logging does)."""
        dul = self.dul
        return (dul.state_machine.current_state == "Sta6" and not dul.event_queue.qsize()
                and not any(dul.assoc.get_handlers(watched) for watched in _RECEIVE_WATCHERS))

    def _refuse(self, sock: AssociationSocket, what: str) -> None:
        log.warning("DICOM peer %s sent %s: association aborted", _peer(sock), what)
        self.refused = True
        self.dul.event_queue.put("Evt19")  # unrecognised or invalid PDU

    def _closed(self) -> None:
        self.dul.event_queue.put("Evt17")  # transport connection closed
        if self.waiting_for_request:
            self.waiting_for_request = False
            self.dul.to_user_queue.put(None)  # the acceptor's "no request came": it ends now


def _presentation_data_values(pdu: bytes) -> list[tuple[int, bytes]] | None:
    """The (context ID, message control header + fragment) of each PDV item of a P-DATA-TF
    (PS3.8 9.3.5.1) as pynetdicom decodes them; None when the items do not exactly fill the
    PDU or one is empty, left to pynetdicom's decoder to refuse."""
    values = []
    offset, end = 6, len(pdu)
    while offset < end:
        if end - offset < 6:
            return None
        length, context_id = _PDV_ITEM.unpack_from(pdu, offset)
        if length < 2 or offset + 4 + length > end:
            return None
        values.append((context_id, pdu[offset + 5:offset + 4 + length]))
        offset += 4 + length
    return values


def _read_pdu(sock: AssociationSocket, header: bytes, length: int) -> bytes:
    """The header and the `length` bytes after it, shorter if the connection ends first. One
    buffer filled by as few reads as the socket gives: pynetdicom's recv reads 4 kB at a time
    and appends, ~33 reads per 132 kB image."""
    buffer = bytearray(6 + length)
    buffer[:6] = header
    view = memoryview(buffer)
    filled = 6
    raw = sock.socket
    assert raw is not None
    while filled < len(buffer):
        got = raw.recv_into(view[filled:])
        if not got:
            break
        filled += got
    view.release()
    return bytes(buffer[:filled]) if filled < len(buffer) else bytes(buffer)


def abort_on_undecodable_messages(assoc: Association) -> None:
    """A P-DATA whose DIMSE message pynetdicom cannot decode (a command set without Command
    Field, say) makes its decoder raise inside the DUL's thread, which then dies with a
    traceback and leaves the association to time out. Here it is an invalid PDU instead: the
    peer gets an A-ABORT and the association ends at once."""
    receive = assoc.dimse.receive_primitive

    def receive_primitive(primitive: Any) -> None:
        try:
            receive(primitive)
        except Exception as exc:  # pynetdicom's message decoding raises anything on bad input
            log.warning("DICOM peer %s sent a DIMSE message that cannot be decoded (%s): association aborted",
                        assoc.requestor.address if assoc.is_acceptor else assoc.acceptor.address,
                        type(exc).__name__)
            assoc.dul.event_queue.put("Evt19")

    assoc.dimse.receive_primitive = receive_primitive  # type: ignore[method-assign]


def _peer(sock: AssociationSocket) -> str:
    try:
        host, port = sock.socket.getpeername()[:2] if sock.socket is not None else ("?", 0)
    except OSError:
        return "(disconnected)"
    return f"{host}:{port}"


def _copy_context(self: PresentationContext, memo: dict[int, Any]) -> PresentationContext:
    """copy.deepcopy of a PresentationContext without re-validating its UIDs.

    pynetdicom deep-copies the AE's ~180 supported contexts for every inbound association;
    the generic deepcopy rebuilds each UID through pydicom's validating UID.__new__ (~30-50 ms
    per association here). UIDs are immutable strings, so sharing them is a faithful copy."""
    new = PresentationContext.__new__(PresentationContext)
    new.__dict__.update(self.__dict__)
    new._transfer_syntax = list(self._transfer_syntax)
    return new


def install_fast_context_copy() -> None:
    PresentationContext.__deepcopy__ = _copy_context  # type: ignore[attr-defined]


def _send_stored_files(assoc: Association) -> None:
    send = assoc.send_c_store

    def send_c_store(dataset: Any, *args: Any, **kwargs: Any) -> Dataset:
        if not isinstance(dataset, StoredFile):
            return send(dataset, *args, **kwargs)
        try:
            if dataset.data is not None:
                offset = _offset(dataset.data[:144])
                if offset is None:
                    return send(dcmread(dataset.source()), *args, **kwargs)
                return _send_file(assoc, dataset, dataset.data[offset:], *args, **kwargs)
            offset = dataset_offset(dataset.path)
            if offset is None:
                return send(dataset.path, *args, **kwargs)
            return _send_file(assoc, dataset, (dataset.path, offset), *args, **kwargs)
        except ValueError:
            # The peer accepted no context with the stored transfer syntax: let pynetdicom
            # convert between uncompressed syntaxes (compressed ones still fail, as they must).
            return send(dcmread(dataset.source()), *args, **kwargs)

    # An instance attribute: pynetdicom builds Association objects itself, so no subclass can
    # be substituted; its service classes call assoc.send_c_store and find this one. (pynetdicom
    # swaps assoc.abort the same way in service_class.attempt.)
    assoc.send_c_store = send_c_store  # type: ignore[method-assign]


def _send_file(assoc: Association, stored: StoredFile, dataset: tuple[Path, int] | bytes, msg_id: int = 1,
               priority: int = 2, originator_aet: str | None = None, originator_id: int | None = None) -> Dataset:
    """pynetdicom's Association.send_c_store for a stored file, minus re-reading the file meta
    with pydicom (~1 ms per instance): the index already knows the SOP class and syntax.
    `dataset` is the encoded dataset, or where it starts in the stored file (streamed from there)."""
    context = assoc._get_valid_context(stored.SOPClassUID, stored.transfer_syntax, "scu", allow_conversion=False)
    req = C_STORE()
    req.MessageID = msg_id
    req.Priority = priority
    req.MoveOriginatorApplicationEntityTitle = originator_aet
    req.MoveOriginatorMessageID = originator_id
    req.AffectedSOPClassUID = stored.SOPClassUID
    req.AffectedSOPInstanceUID = stored.SOPInstanceUID
    if isinstance(dataset, bytes):
        req.DataSet = io.BytesIO(dataset)
    else:
        req._dataset_path = dataset  # type: ignore[attr-defined]
    # As pynetdicom does: hold the association's own reactor so it cannot take the response.
    assoc._reactor_checkpoint.clear()
    while not assoc._is_paused:
        time.sleep(0.0001)
    try:
        assoc.dimse.send_msg(req, context.context_id)
        _, rsp = assoc.dimse.get_msg(block=True)
    finally:
        assoc._reactor_checkpoint.set()
    if rsp is None:  # the DIMSE timeout expired
        assoc._handle_no_response()
        return Dataset()
    return assoc._check_received_status(rsp)


CONNECTION_HANDLERS: list[tuple[evt.EventType, Callable[[Event], None]]] = [
    (evt.EVT_CONN_OPEN, on_connection_open),
]
