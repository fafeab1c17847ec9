"""The direct DIMSE-C encoder produces exactly the bytes pynetdicom's own encoder produces."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.uid import generate_uid
from pynetdicom import dimse_primitives as prim
from pynetdicom.dimse import _RQ_TO_MESSAGE, _RSP_TO_MESSAGE
from pynetdicom.sop_class import CTImageStorage, StudyRootQueryRetrieveInformationModelGet

from twinpacs.dimse.fast_messages import Unsupported, encode_command, p_data_values


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
