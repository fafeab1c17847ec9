"""The DIMSE door: one pynetdicom AE serving verification, storage, query/retrieve and
storage commitment for a Site, in background threads."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.association import Association
from pynetdicom.events import Event
from pynetdicom.transport import ThreadedAssociationServer

from ..app import Site
from ..core.reconcile import local_zone
from .access import DicomAccess
from .commitment import StorageCommitment
from .handlers import ModalityWorklistInformationFind, handle_find, handle_store
from .retrieve import handle_get, handle_move
from .scu import move_destinations
from . import uid_checks
from .tls import TlsAssociationServer, server_context
from .transport import (
    CONNECTION_HANDLERS,
    apply_limits,
    enable_stored_file_sending,
    install_fast_context_copy,
    skip_forced_collections,
    skip_unlogged_dumps,
)
from .uids import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StorageCommitmentPushModel,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)
from .worklist import Worklist

log = logging.getLogger(__name__)

_POLL_INTERVAL = 0.05  # seconds the accept loop may take to notice shutdown()

# Accepted for storage and for C-STORE inside C-GET; which one is used is the requester's
# choice (see prefer_requested_syntaxes), so the order here does not matter.
STORAGE_TRANSFER_SYNTAXES = [
    ImplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
]
QUERY_RETRIEVE_MODELS = [
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
]


class DimseServer:
    """A running DICOM listener. `port` is the real one, also when settings asked for 0."""

    def __init__(self, site: Site, ae: AE, server: ThreadedAssociationServer, commitment: StorageCommitment) -> None:
        self.site = site
        self.ae = ae
        self._server = server
        self._commitment = commitment
        self._stopped = False

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def shutdown(self, grace: float = 5.0) -> None:
        """Stop accepting, give open associations `grace` seconds to end, abort the rest,
        then wait for their threads: a handler already running (a store being made durable)
        completes; its response is sent only if the association is still there."""
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        deadline = time.monotonic() + grace
        for assoc in self._associations():
            assoc.join(max(0.0, deadline - time.monotonic()))
        for assoc in self._associations():
            log.warning("aborting association with %s at shutdown", assoc.requestor.ae_title)
            assoc.abort()
        for assoc in self._associations():
            assoc.join()
        self._commitment.shutdown()

    def _associations(self) -> list[Association]:
        return [a for a in self.ae.active_associations if a.is_alive()]


def prefer_requested_syntaxes(event: Event) -> None:
    """EVT_REQUESTED: let the requester's transfer syntax preference decide.

    pynetdicom, as acceptor, takes the first of *its own* syntaxes that a proposed context
    lists. Reordering this association's copy of our contexts to follow the proposals lets a
    sender offering several syntaxes keep the one it listed first (usually its file's), and
    gives a C-GET requester such as `getscu +xs`, proposing [JPEG Lossless, Explicit VR LE,
    ...] in one context, the JPEG Lossless it asked for."""
    request = event.assoc.requestor.primitive
    if request is None:
        return
    proposed: dict[str, list[UID]] = {}
    for context in request.presentation_context_definition_list:
        proposed.setdefault(str(context.abstract_syntax), []).extend(context.transfer_syntax)
    for context in event.assoc.acceptor.supported_contexts:  # a per-association copy
        wanted = proposed.get(str(context.abstract_syntax))
        if wanted:
            rank: dict[str, int] = {}
            for ts in wanted:
                rank.setdefault(ts, len(rank))
            # A stable sort of our own (already validated) UIDs: the requester's order first,
            # the rest in ours. Assigned directly: the transfer_syntax setter re-validates
            # every UID, which for ~180 contexts cost ~20 ms per association.
            context._transfer_syntax = sorted(context.transfer_syntax,
                                              key=lambda ts: rank.get(ts, len(wanted)))


def build_ae(site: Site) -> AE:
    ae = AE(ae_title=site.ae_title)
    ae.maximum_associations = site.settings.dicom.max_associations
    apply_limits(ae, site.settings.limits)
    ae.add_supported_context(Verification)
    for context in AllStoragePresentationContexts:
        # Both roles: C-STORE SCP for senders, C-STORE SCU inside C-GET (role selection).
        ae.add_supported_context(str(context.abstract_syntax), STORAGE_TRANSFER_SYNTAXES,
                                 scu_role=True, scp_role=True)
    for model in QUERY_RETRIEVE_MODELS:
        ae.add_supported_context(model)
    ae.add_supported_context(StorageCommitmentPushModel)
    ae.add_supported_context(ModalityWorklistInformationFind)
    return ae


def start_dimse(site: Site) -> DimseServer:
    """Start listening on dicom.bind:dicom.port without blocking; TLS only when dicom.tls_* say so."""
    settings = site.settings.dicom
    ssl_context = server_context(settings)  # first: an unreadable certificate stops the start here
    enable_stored_file_sending()
    install_fast_context_copy()
    uid_checks.install()
    skip_unlogged_dumps()
    skip_forced_collections()
    access = DicomAccess(site.settings, site.access_trail)
    access.announce()
    ae = build_ae(site)
    replication = site.settings.replication
    waits = replication.commitment_waits_for_peer and site.replication is not None
    destinations = move_destinations(settings)
    commitment = StorageCommitment(ae, site.archive, destinations,
                                   site.outbox.unconfirmed if waits else None, replication.commitment_wait_s)
    worklist = Worklist(site.ris, local_zone(site.settings.hl7.timezone), site.settings.limits.max_query_results)
    handlers: list[Any] = [
        *CONNECTION_HANDLERS,
        *access.handlers,  # first: an AE not admitted is rejected before anything else runs
        (evt.EVT_REQUESTED, prefer_requested_syntaxes),
        (evt.EVT_C_STORE, access.store(handle_store), [site.archive]),
        (evt.EVT_C_FIND, access.find(handle_find), [site.archive, site.ae_title, worklist.handle_find,
                                                    site.settings.limits.max_query_results]),
        (evt.EVT_C_GET, access.get(handle_get), [site.archive]),
        (evt.EVT_C_MOVE, access.move(handle_move), [site.archive, destinations]),
        *commitment.handlers,
    ]
    if site.commitment_reports is not None:  # reports our DIMSE peers send on a new association
        handlers.append((evt.EVT_N_EVENT_REPORT, site.commitment_reports.on_report))
    # AE.start_server(block=False) would do, but polls for shutdown every 0.5 s; the same
    # steps with a shorter poll interval make shutdown() prompt.
    server = ae.make_server((settings.bind, settings.port), evt_handlers=handlers, ssl_context=ssl_context,
                           server_class=TlsAssociationServer if ssl_context else ThreadedAssociationServer)
    ae._servers.append(server)  # as start_server does: server.shutdown() removes it
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": _POLL_INTERVAL},
                     name=f"dimse-{site.ae_title}", daemon=True).start()
    dimse = DimseServer(site, ae, server, commitment)
    log.info("DICOM %s listening on %s:%d%s", site.ae_title, settings.bind, dimse.port,
             " (TLS only)" if ssl_context else "")
    return dimse
