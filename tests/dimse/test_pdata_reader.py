"""P-DATA-TF PDUs handed straight to DIMSE on receipt (dimse/transport.py): the same values
pynetdicom's decoder gives, and pynetdicom's own path wherever something watches it."""

from __future__ import annotations

import struct

import pytest
from pydicom.dataset import Dataset
from pynetdicom import build_context, evt
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind, Verification

from twinpacs.dimse import DimseServer
from twinpacs.dimse.transport import _presentation_data_values

from .conftest import association

FIND = StudyRootQueryRetrieveInformationModelFind


def _pdu(*items: tuple[int, bytes]) -> bytes:
    body = b"".join(struct.pack(">IB", len(value) + 1, context_id) + value for context_id, value in items)
    return struct.pack(">BBI", 0x04, 0, len(body)) + body


@pytest.mark.parametrize("items", [
    [(1, b"\x03" + b"c" * 40)],
    [(1, b"\x01" + b"c" * 10), (1, b"\x03" + b"d" * 11)],
    [(3, b"\x03" + b"c" * 20), (3, b"\x02" + bytes(range(256)) * 512)],
    [(255, b"\x00")],
    [],
])
def test_the_values_are_pynetdicoms(items: list[tuple[int, bytes]]) -> None:
    pdu = P_DATA_TF()
    pdu.decode(_pdu(*items))
    assert _presentation_data_values(_pdu(*items)) == pdu.to_primitive().presentation_data_value_list == items


@pytest.mark.parametrize("pdu", [
    _pdu((1, b"\x03abc"))[:-1],  # the item runs past the PDU
    _pdu((1, b"\x03abc")) + b"\x00\x00\x00",  # bytes after the last item, too few for another
    struct.pack(">BBIIB", 0x04, 0, 5, 1, 1),  # an item holding no message control header
    struct.pack(">BBIIB", 0x04, 0, 5, 0, 1),  # an item length of zero
])
def test_malformed_items_are_left_to_pynetdicom(pdu: bytes) -> None:
    assert _presentation_data_values(pdu) is None


def _query() -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientID = "NOBODY"
    return query


def _exchange(server: DimseServer) -> None:
    with association(server.port, [build_context(Verification), build_context(FIND)]) as assoc:
        assert assoc.send_c_echo().Status == 0x0000
        assert [status.Status for status, _ in assoc.send_c_find(_query(), FIND)] == [0x0000]


def test_data_pdus_skip_pynetdicoms_decoder(server: DimseServer, monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[int] = []
    stock = DULServiceProvider._decode_pdu

    def decode(self: DULServiceProvider, data: bytearray) -> object:
        decoded.append(data[0])
        return stock(self, data)

    monkeypatch.setattr(DULServiceProvider, "_decode_pdu", decode)
    _exchange(server)
    # Both ends (the test client too has this site's connection hooks) decode only the
    # association's own PDUs the stock way: A-ASSOCIATE-RQ/AC, A-RELEASE-RQ/RP.
    assert sorted(decoded) == [0x01, 0x02, 0x05, 0x06]


@pytest.mark.parametrize("watched", [evt.EVT_PDU_RECV, evt.EVT_DATA_RECV, evt.EVT_FSM_TRANSITION])
def test_a_handler_watching_received_pdus_sees_every_one(server: DimseServer, watched: evt.EventType) -> None:
    seen: list[object] = []

    def watch(event: evt.Event) -> None:
        if watched is evt.EVT_PDU_RECV and isinstance(event.pdu, P_DATA_TF):
            seen.append(event.pdu)
        elif watched is evt.EVT_DATA_RECV and event.data[0] == 0x04:
            seen.append(event.data)
        elif watched is evt.EVT_FSM_TRANSITION and event.fsm_event == "Evt10":
            seen.append(event.action)

    server._server.bind(watched, watch)
    _exchange(server)
    assert len(seen) == 3  # echo command; find command and identifier
