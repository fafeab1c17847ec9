"""The direct DIMSE-C encoder produces exactly the bytes pynetdicom's own encoder produces, and the
direct decoder the primitives pynetdicom's own decoder makes."""

from __future__ import annotations

import queue
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.uid import generate_uid
from pynetdicom import dimse_primitives as prim
from pynetdicom.dimse import _RQ_TO_MESSAGE, _RSP_TO_MESSAGE
from pynetdicom.dimse_messages import _COMMAND_SET_KEYWORDS, _DATASET_KEYWORDS, DIMSEMessage
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.sop_class import CTImageStorage, StudyRootQueryRetrieveInformationModelGet

from twinpacs.dimse.fast_messages import Receiver, Unsupported, encode_command, message_name, p_data_values


def pynetdicom_pdvs(primitive: Any, max_pdu: int) -> list[bytes]:
    table = _RQ_TO_MESSAGE if getattr(primitive, "MessageIDBeingRespondedTo", None) is None else _RSP_TO_MESSAGE
    message = table[type(primitive)]()
    message.primitive_to_message(primitive)
    return [pdata.presentation_data_value_list[0][1] for pdata in message.encode_msg(1, max_pdu)]


def ours(primitive: Any, max_pdu: int) -> list[bytes]:
    command, dataset = encode_command(primitive)
    return list(p_data_values(command, dataset, max_pdu))


def store_rq(originator: str | None = None) -> prim.C_STORE:
    req = prim.C_STORE()
    req.MessageID = 7
    req.Priority = 2
    req.AffectedSOPClassUID = CTImageStorage
    req.AffectedSOPInstanceUID = generate_uid()  # odd and even lengths both occur
    if originator:
        req.MoveOriginatorApplicationEntityTitle = originator
        req.MoveOriginatorMessageID = 3
    return req


@pytest.mark.parametrize("max_pdu", [0, 16384, 64])
def test_store_request_with_a_file_matches(tmp_path: Path, max_pdu: int) -> None:
    path = tmp_path / "f.dcm"
    path.write_bytes(b"\0" * 132 + bytes(range(256)) * 600)
    for originator in (None, "MOVESCU", "ODD"):
        req = store_rq(originator)
        req._dataset_path = (path, 132)
        assert ours(req, max_pdu) == pynetdicom_pdvs(req, max_pdu)


@settings(max_examples=60, deadline=None)
@given(remaining=st.integers(0, 65535), completed=st.integers(0, 65535), failed=st.integers(0, 10),
       status=st.sampled_from([0x0000, 0xFF00, 0xFE00, 0xB000, 0xA702]),
       comment=st.one_of(st.none(), st.text("abcdef XYZ", max_size=9)),
       identifier=st.one_of(st.none(), st.binary(min_size=1, max_size=300)),
       max_pdu=st.sampled_from([0, 16384, 40]))
def test_retrieve_responses_match(remaining: int, completed: int, failed: int, status: int, comment: str | None,
                                  identifier: bytes | None, max_pdu: int) -> None:
    rsp = prim.C_GET()
    rsp.MessageIDBeingRespondedTo = 5
    rsp.AffectedSOPClassUID = StudyRootQueryRetrieveInformationModelGet
    rsp.Status = status
    rsp.NumberOfRemainingSuboperations = remaining
    rsp.NumberOfCompletedSuboperations = completed
    rsp.NumberOfFailedSuboperations = failed
    rsp.NumberOfWarningSuboperations = 0
    if comment is not None:
        rsp.ErrorComment = comment
    if identifier is not None:
        rsp.Identifier = BytesIO(identifier if len(identifier) % 2 == 0 else identifier + b"\0")
    assert ours(rsp, max_pdu) == pynetdicom_pdvs(rsp, max_pdu)


def test_store_find_echo_responses_match() -> None:
    store = prim.C_STORE()
    store.MessageIDBeingRespondedTo = 9
    store.AffectedSOPClassUID = CTImageStorage
    store.AffectedSOPInstanceUID = generate_uid()
    store.Status = 0
    find = prim.C_FIND()
    find.MessageIDBeingRespondedTo = 2
    find.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.2.2.1"
    find.Status = 0xFF00
    find.Identifier = BytesIO(b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY ")
    echo = prim.C_ECHO()
    echo.MessageIDBeingRespondedTo = 1
    echo.AffectedSOPClassUID = "1.2.840.10008.1.1"
    echo.Status = 0
    for primitive in (store, find, echo):
        assert ours(primitive, 16384) == pynetdicom_pdvs(primitive, 16384)


def test_what_it_does_not_cover_goes_to_pynetdicom() -> None:
    report = prim.N_EVENT_REPORT()
    report.MessageID = 1
    with pytest.raises(Unsupported):
        encode_command(report)


# -- receiving ------------------------------------------------------------------------------


class _Dimse:
    """What Receiver uses of pynetdicom's DIMSEServiceProvider."""

    def __init__(self) -> None:
        self.cancel_req: dict[int, Any] = {}
        self.msg_queue: queue.Queue[tuple[int, Any]] = queue.Queue()


def _received(pdvs: list[bytes], per_p_data: int = 1) -> tuple[_Dimse, list[P_DATA]]:
    """Feed the PDVs to a receiver, `per_p_data` in each P-DATA; what it queued, what it left to pynetdicom."""
    dimse, handed_over = _Dimse(), []
    receiver = Receiver(dimse, handed_over.append)  # type: ignore[arg-type]
    for start in range(0, len(pdvs), per_p_data):
        p_data = P_DATA()
        p_data.presentation_data_value_list.extend((1, pdv) for pdv in pdvs[start:start + per_p_data])
        receiver(p_data)
    return dimse, handed_over


def _by_pynetdicom(pdvs: list[bytes]) -> Any:
    message = DIMSEMessage()
    p_data = P_DATA()
    p_data.presentation_data_value_list.extend((1, pdv) for pdv in pdvs)
    assert message.decode_msg(p_data)
    return message.message_to_primitive()


def _messages() -> list[Any]:
    find = prim.C_FIND()
    find.MessageID, find.Priority = 3, 0
    find.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.2.2.1"
    find.Identifier = BytesIO(b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY ")
    move = prim.C_MOVE()
    move.MessageID, move.Priority, move.MoveDestination = 4, 1, "DEST"
    move.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.2.2.2"
    move.Identifier = BytesIO(b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY ")
    echo = prim.C_ECHO()
    echo.MessageID, echo.AffectedSOPClassUID = 5, "1.2.840.10008.1.1"
    rsp = prim.C_GET()
    rsp.MessageIDBeingRespondedTo, rsp.Status, rsp.ErrorComment = 6, 0xA702, "out of space"
    rsp.AffectedSOPClassUID = StudyRootQueryRetrieveInformationModelGet
    rsp.NumberOfRemainingSuboperations, rsp.NumberOfFailedSuboperations = 0, 2
    store = store_rq("MOVESCU")
    store.DataSet = BytesIO(bytes(range(256)) * 40)
    return [store, find, move, echo, rsp]


@pytest.mark.parametrize("max_pdu", [0, 64])
def test_received_messages_are_the_primitives_pynetdicom_makes(max_pdu: int) -> None:
    for message in _messages():
        pdvs = ours(message, max_pdu)
        dimse, handed_over = _received(pdvs)
        expected = _by_pynetdicom(pdvs)
        context_id, got = dimse.msg_queue.get_nowait()
        assert handed_over == [] and context_id == 1 and type(got) is type(expected)
        name = message_name(expected)
        for keyword in _COMMAND_SET_KEYWORDS[name]:
            if hasattr(expected, keyword):
                assert getattr(got, keyword) == getattr(expected, keyword), keyword
        keyword = _DATASET_KEYWORDS.get(name.replace("-", "_"))
        if keyword:
            assert getattr(got, keyword).getvalue() == getattr(expected, keyword).getvalue()


def test_several_messages_in_one_p_data_are_each_queued_in_order() -> None:
    pdvs = [pdv for message in _messages() for pdv in ours(message, 0)]
    dimse, _ = _received(pdvs, per_p_data=len(pdvs))
    queued = [dimse.msg_queue.get_nowait()[1] for _ in range(dimse.msg_queue.qsize())]
    assert [type(p).__name__ for p in queued] == ["C_STORE", "C_FIND", "C_MOVE", "C_ECHO", "C_GET"]


def test_a_cancel_is_kept_apart_as_pynetdicom_keeps_it() -> None:
    cancel = prim.C_CANCEL()
    cancel.MessageIDBeingRespondedTo = 3
    dimse, _ = _received(ours(cancel, 0))
    assert list(dimse.cancel_req) == [3] and dimse.msg_queue.empty()


def test_what_the_decoder_does_not_cover_goes_to_pynetdicom_whole() -> None:
    report = prim.N_EVENT_REPORT()
    report.MessageID, report.EventTypeID = 1, 1
    report.AffectedSOPClassUID, report.AffectedSOPInstanceUID = "1.2.840.10008.1.20.1", "1.2.840.10008.1.20.1.1"
    report.EventInformation = BytesIO(bytes(100))
    pdvs = pynetdicom_pdvs(report, 64)
    dimse, handed_over = _received(pdvs)
    assert dimse.msg_queue.empty() and len(handed_over) == 1
    assert [pdv for _, pdv in handed_over[0].presentation_data_value_list] == pdvs
