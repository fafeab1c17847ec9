"""Messages written straight to the socket (dimse/pdata_writer.py): the bytes pynetdicom
would send, and pynetdicom's own path wherever a handler watches what is sent."""

from __future__ import annotations

from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom import build_context, evt
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind, Verification

from twinpacs.dimse import DimseServer
from twinpacs.dimse.pdata_writer import pdu_header, watches_only_n_messages

from .conftest import association

FIND = StudyRootQueryRetrieveInformationModelFind


@pytest.mark.parametrize("pdv", [b"\x03", b"\x02" + bytes(range(256)) * 64, b"\x00" + b"x" * 16378])
@pytest.mark.parametrize("context_id", [1, 127, 255])
def test_a_pdu_is_what_pynetdicom_encodes(pdv: bytes, context_id: int) -> None:
    primitive = P_DATA()
    primitive.presentation_data_value_list.append((context_id, pdv))
    assert pdu_header(context_id, len(pdv)) + pdv == P_DATA_TF(primitive).encode()


def _query() -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientID = "NOBODY"
    return query


def _exchange(server: DimseServer, watcher: Any) -> list[object]:
    """A C-ECHO and a C-FIND from a client watching the PDUs it sends; the P-DATA-TFs seen."""
    seen: list[object] = []

    def watch(event: evt.Event) -> None:
        if isinstance(event.pdu, P_DATA_TF):
            seen.append(event.pdu)

    with association(server.port, [build_context(Verification), build_context(FIND)],
                     evt_handlers=[(evt.EVT_PDU_SENT, watcher(watch))]) as assoc:
        assert assoc.send_c_echo().Status == 0x0000
        statuses = [status.Status for status, _ in assoc.send_c_find(_query(), FIND)]
    assert statuses == [0x0000]  # the server's answers arrive whole, written its direct way
    return seen


def test_a_handler_watching_sent_pdus_sees_every_one(server: DimseServer) -> None:
    assert len(_exchange(server, lambda handler: handler)) == 3  # echo; find command + identifier


def test_a_handler_marked_as_watching_only_n_messages_leaves_the_direct_path_open(server: DimseServer) -> None:
    assert _exchange(server, watches_only_n_messages) == []
