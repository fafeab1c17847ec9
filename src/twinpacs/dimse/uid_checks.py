"""pynetdicom 3.0.4 checks each UID of an association negotiation three times with regular
expressions (pydicom's UID(), its own validator, UID.is_valid), and again each time the UID
is copied from PDU item to primitive to presentation context. A getscu proposing ~120
storage contexts made that a third of the server's work per association. The UIDs involved
are SOP class and transfer syntax UIDs, a few hundred at most: each one that passed every
check once is remembered and reused as it is (a UID is an immutable string).

Instance UIDs (Affected/Requested SOP Instance UID) are not remembered: they are unbounded,
and each is seen once anyway."""

from __future__ import annotations

from typing import Any

from pydicom.uid import UID
from pynetdicom import dimse_primitives, pdu_items, pdu_primitives, presentation, utils

# The set_uid parameter names whose values are class or syntax UIDs.
_CLASS_UID_NAMES = frozenset({
    "Abstract Syntax Name", "abstract_syntax", "Transfer Syntax Name", "Application Context Name",
    "Implementation Class UID", "SOP Class UID", "Service Class UID", "Affected SOP Class UID",
})
_MAX_REMEMBERED = 4096  # a peer sending made-up class UIDs cannot grow it without bound
_checked: dict[str | bytes, UID] = {}  # value as received (PDU bytes or text) -> the checked UID
_RAW_TYPES = (str, UID, bytes)
_stock_set_uid = utils.set_uid
_stock_add_transfer_syntax = presentation.PresentationContext.add_transfer_syntax


def _set_uid(value: Any, name: str, allow_empty: bool = True, allow_none: bool = True,
             validate: bool = True) -> UID | None:
    if type(value) in _RAW_TYPES and (known := _checked.get(value)) is not None:
        return known
    uid = _stock_set_uid(value, name, allow_empty, allow_none, validate)
    if (uid and validate and name in _CLASS_UID_NAMES and type(value) in _RAW_TYPES
            and uid.is_valid and len(_checked) < _MAX_REMEMBERED):
        _checked[value] = _checked[str(uid)] = uid
    return uid


def _add_transfer_syntax(self: presentation.PresentationContext, syntax: Any) -> None:
    known = _checked.get(syntax) if type(syntax) in (str, UID) else None
    if known is None or not (known.is_private or known.is_transfer_syntax):
        _stock_add_transfer_syntax(self, syntax)  # checks it, and warns about what it should
    elif known not in self._transfer_syntax:
        self._transfer_syntax.append(known)


def install() -> None:
    """Process-wide: every module that imported pynetdicom's set_uid gets the remembering one."""
    for module in (pdu_items, pdu_primitives, presentation, dimse_primitives):
        module.set_uid = _set_uid  # type: ignore[attr-defined]
    presentation.PresentationContext.add_transfer_syntax = _add_transfer_syntax  # type: ignore[method-assign]
