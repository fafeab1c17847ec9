"""The remembered UID checks of association negotiation (dimse/uid_checks.py) accept and
refuse exactly what pynetdicom's own checks do."""

from __future__ import annotations

import pytest
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import pdu_items, utils
from pynetdicom.presentation import PresentationContext

from twinpacs.dimse import uid_checks


@pytest.fixture(autouse=True)
def installed() -> None:
    uid_checks.install()


def test_a_proposed_context_decoded_twice_gets_the_same_checked_uids() -> None:
    first, second = pdu_items.TransferSyntaxSubItem(), pdu_items.TransferSyntaxSubItem()
    first.transfer_syntax_name = ExplicitVRLittleEndian.encode("ascii")
    second.transfer_syntax_name = ExplicitVRLittleEndian.encode("ascii")
    assert first.transfer_syntax_name == ExplicitVRLittleEndian
    assert second.transfer_syntax_name is first.transfer_syntax_name  # remembered, not checked again


def _outcome(check: object, value: object) -> object:
    try:
        return check(value, "Abstract Syntax Name")  # type: ignore[operator]
    except Exception as exc:
        return type(exc)


@pytest.mark.parametrize("value", [
    CTImageStorage, CTImageStorage.encode("ascii"), "1.2.abc", b"1.2.840.10008.\xff", "1." + "2" * 70, "", None, 12,
])
def test_every_value_gets_what_pynetdicom_gives_it_also_once_remembered(value: object) -> None:
    expected = _outcome(uid_checks._stock_set_uid, value)
    assert _outcome(pdu_items.set_uid, value) == expected
    assert _outcome(pdu_items.set_uid, value) == expected


def test_instance_uids_are_not_remembered() -> None:
    instance = "1.2.826.0.1.3680043.8.498.1234567890123456789"
    assert pdu_items.set_uid(instance, "Affected SOP Instance UID") == instance
    assert instance not in uid_checks._checked


def test_a_non_conformant_uid_is_not_remembered_and_still_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    odd = "1.2.840.01"  # a component with a leading zero: accepted, with a warning
    for _ in range(2):
        caplog.clear()
        assert pdu_items.set_uid(odd, "Abstract Syntax Name") == odd
        assert "Non-conformant" in caplog.text
    assert odd not in uid_checks._checked


def test_transfer_syntaxes_of_a_context_are_kept_once_and_in_order() -> None:
    context = PresentationContext()
    context.abstract_syntax = CTImageStorage
    for syntax in (ImplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        context.add_transfer_syntax(syntax)
    assert context.transfer_syntax == [ImplicitVRLittleEndian, ExplicitVRLittleEndian]


def test_the_stock_function_is_what_checks_a_new_value() -> None:
    assert uid_checks._stock_set_uid is utils.set_uid
