"""Associations this site opens itself: C-MOVE sub-operations, commitment reports,
replication to DIMSE peers and prefetch from DIMSE sources; with DICOM TLS where the
remote node is configured for it."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterable
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_context
from pynetdicom.association import Association
from pynetdicom.pdu_primitives import SCP_SCU_RoleSelectionNegotiation
from pynetdicom.presentation import PresentationContext

from ..config import DicomSettings, parse_host_port
from ..core.model import StoredInstance
from .tls import client_context
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


@dataclass(frozen=True)
class Remote:
    """A DICOM node this site calls: its AE title, its address and, for DICOM TLS, the context."""

    ae_title: str
    host: str
    port: int
    tls: ssl.SSLContext | None = None

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}{' over TLS' if self.tls else ''}"

    @property
    def tls_args(self) -> tuple[ssl.SSLContext, str] | None:
        """pynetdicom's tls_args: the context and the name the remote's certificate must bear."""
        return (self.tls, self.host) if self.tls else None


def remote(dicom: DicomSettings, ae_title: str, host: str, port: int, tls: bool) -> Remote:
    """A configured node; its TLS context is built here, so a bad certificate file stops the start."""
    return Remote(ae_title, host, port, client_context(dicom) if tls else None)


def move_destinations(dicom: DicomSettings) -> dict[str, Remote]:
    """dicom.move_destinations, those in dicom.tls_destinations reached with TLS."""
    context = client_context(dicom) if dicom.tls_destinations else None
    return {ae: Remote(ae, *parse_host_port(address), context if ae in dicom.tls_destinations else None)
            for ae, address in dicom.move_destinations.items()}


def associate(
    ae: AE,
    to: Remote,
    contexts: list[PresentationContext],
    roles: list[SCP_SCU_RoleSelectionNegotiation] | None = None,
) -> Association:
    """Open an association with our connection handlers bound (TCP_NODELAY, as-stored sending)."""
    return ae.associate(
        to.host, to.port, contexts=contexts, ae_title=to.ae_title,
        ext_neg=list(roles or []), evt_handlers=list(CONNECTION_HANDLERS), tls_args=to.tls_args,
    )


def no_association(to: Remote) -> str:
    """Why nothing was sent, for the operator: pynetdicom's log holds the exact refusal."""
    causes = "refused, TLS handshake failed, or nothing listens there" if to.tls else "refused, or nothing listens there"
    return f"no association with {to} ({causes})"


def move_destination_kwargs(to: Remote, contexts: list[PresentationContext]) -> dict[str, object]:
    """The third item of a C-MOVE handler's destination yield, passed on to ae.associate."""
    return {"contexts": contexts, "evt_handlers": list(CONNECTION_HANDLERS), "tls_args": to.tls_args}


def identifier(level: str, **keys: str) -> Dataset:
    """A C-FIND/C-GET identifier: the query level and the given keys ("" asks for a value)."""
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds
