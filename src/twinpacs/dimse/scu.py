"""Associations this site opens itself: C-MOVE sub-operations and commitment reports."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_context
from pynetdicom.association import Association
from pynetdicom.pdu_primitives import SCP_SCU_RoleSelectionNegotiation
from pynetdicom.presentation import PresentationContext

from ..core.model import StoredInstance
from .transport import CONNECTION_HANDLERS

log = logging.getLogger(__name__)

MAX_CONTEXTS = 128  # PS3.8 9.3.2.2: context IDs are odd numbers 1..255


def storage_contexts(instances: Iterable[StoredInstance]) -> list[PresentationContext]:
    """One context per (SOP class, stored transfer syntax), so each file can go as stored,
    then an uncompressed fallback per SOP class for peers that refuse the stored syntax."""
    pairs = dict.fromkeys((i.sop_class_uid, i.transfer_syntax) for i in instances)
    contexts = [build_context(sop_class, syntax) for sop_class, syntax in pairs]
    for sop_class in dict.fromkeys(sop_class for sop_class, syntax in pairs if not UID(syntax).is_compressed):
        contexts.append(build_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian]))
    if len(contexts) > MAX_CONTEXTS:
        log.warning("%d presentation contexts needed, %d proposed; the rest will fail", len(contexts), MAX_CONTEXTS)
    return contexts[:MAX_CONTEXTS]


def associate(
    ae: AE,
    address: tuple[str, int],
    ae_title: str,
    contexts: list[PresentationContext],
    roles: list[SCP_SCU_RoleSelectionNegotiation] | None = None,
) -> Association:
    """Open an association with our connection handlers bound (TCP_NODELAY, as-stored sending)."""
    return ae.associate(
        address[0], address[1], contexts=contexts, ae_title=ae_title,
        ext_neg=list(roles or []), evt_handlers=list(CONNECTION_HANDLERS),
    )


def move_destination_kwargs(contexts: list[PresentationContext]) -> dict[str, object]:
    """The third item of a C-MOVE handler's destination yield, passed on to ae.associate."""
    return {"contexts": contexts, "evt_handlers": list(CONNECTION_HANDLERS)}


def identifier(level: str, **keys: str) -> Dataset:
    """A C-FIND/C-GET identifier: the query level and the given keys ("" asks for a value)."""
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds
