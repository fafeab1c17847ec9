"""A received C-STORE data set as a Part 10 object: the bytes pynetdicom's encoded_dataset() gives."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from pydicom import dcmread
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGLossless
from pynetdicom import evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.events import Event

from twinpacs.dimse.part10 import received_object


@pytest.mark.parametrize(("sop_instance", "syntax"), [
    ("1.2.3.4", ExplicitVRLittleEndian),  # even lengths
    ("1.2.3.45", ImplicitVRLittleEndian),  # odd: padded with NUL
    ("1.2.826.0.1.3680043.8.498.10040404852245009279204409977582300989", JPEGLossless),
])
def test_the_bytes_pynetdicom_gives(sop_instance: str, syntax: UID) -> None:
    request = C_STORE()
    request.AffectedSOPClassUID = CTImageStorage
    request.AffectedSOPInstanceUID = sop_instance
    # (0008,0018) SOPInstanceUID in the syntax's own encoding
    element = b"\x08\x00\x18\x00" + (b"\x08\x00\x00\x00" if syntax.is_implicit_VR else b"UI\x08\x00")
    request.DataSet = io.BytesIO(element + b"1.2.3.4\0")
    context = SimpleNamespace(transfer_syntax=syntax)
    event = Event(SimpleNamespace(), evt.EVT_C_STORE, {"request": request, "context": context})  # type: ignore[arg-type]
    data = received_object(event)
    assert data == event.encoded_dataset()
    meta = dcmread(io.BytesIO(data), stop_before_pixels=True).file_meta
    assert (meta.MediaStorageSOPInstanceUID, meta.TransferSyntaxUID) == (sop_instance, syntax)
