"""C-FIND response identifiers encoded directly: the same bytes pydicom writes for the same
response, in both little endian syntaxes; pydicom's path wherever the direct one does not apply."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.dsutils import encode

from twinpacs.core.model import Level
from twinpacs.dimse import identifiers
from twinpacs.dimse.handlers import responses
from twinpacs.dimse.handlers import response as pydicom_response

ROW = {"PatientName": "Müller^Jörg", "PatientID": "P1", "ModalitiesInStudy": "CT\\MR",
       "NumberOfStudyRelatedInstances": "12", "StudyDate": "20240105", "Rows": "512",
       "SOPClassesInStudy": "1.2.840.10008.5.1.4.1.1.2", "StudyInstanceUID": "1.2.3"}


def _requested() -> list[DataElement]:
    identifier = Dataset()
    for keyword in ("PatientName", "PatientID", "ModalitiesInStudy", "NumberOfStudyRelatedInstances", "StudyDate",
                    "InstitutionName", "SOPClassesInStudy", "StudyInstanceUID"):
        setattr(identifier, keyword, "")
    identifier.ReferencedStudySequence = []
    identifier.add_new(0x00280010, "US", None)  # Rows: binary
    identifier.add_new(0x00110010, "LO", "")  # private: returned empty
    return list(identifier)


def _responses(syntax: UID, requested: list[DataElement]) -> list[Dataset]:
    event = SimpleNamespace(context=SimpleNamespace(transfer_syntax=syntax))
    return list(responses(event, Level.STUDY, requested, [ROW], "TWINPACS"))  # type: ignore[arg-type]


@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, ExplicitVRLittleEndian], ids=lambda s: s.keyword)
def test_direct_identifiers_are_the_bytes_pydicom_writes(syntax: UID) -> None:
    identifiers.install()
    requested = _requested()
    (found,) = _responses(syntax, requested)
    assert isinstance(found, identifiers.EncodedIdentifier)
    expected = encode(pydicom_response(Level.STUDY, requested, ROW, "TWINPACS"), syntax.is_implicit_VR, True)
    assert found.encoded == expected


def test_what_the_direct_encoder_does_not_handle_goes_through_pydicom() -> None:
    identifiers.install()
    (found,) = _responses(ExplicitVRBigEndian, _requested())
    assert not isinstance(found, identifiers.EncodedIdentifier)
    assert (found.PatientName, found.ModalitiesInStudy, found.Rows) == ("Müller^Jörg", ["CT", "MR"], 512)
    assert identifiers.encode_identifier([(0x00091010, "OB", "x")], implicit_vr=False) is None
    assert identifiers.encode_identifier([(0x00081030, "LO", "x" * 70000)], implicit_vr=False) is None
    assert identifiers.encode_identifier([(0x00081030, "LO", "x" * 70000)], implicit_vr=True) is not None
