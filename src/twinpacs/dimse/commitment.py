"""Storage Commitment Push Model, SCP role (PS3.4 J.3).

N-ACTION (Request Storage Commitment) is answered at once; the N-EVENT-REPORT follows once
that answer has left the socket. Where the report goes (PS3.4 J.3.3 allows both):
- a requester whose AE title has an address in dicom.move_destinations gets it on a new
  association (with TLS when dicom.tls_destinations names it), proposing the SCP role; modalities release right after the N-ACTION, so
  this is the route that works in practice;
- any other requester gets one attempt on the association it asked on, if still open.
An instance counts as committed only when the index holds it as the current version with
the SOP class the requester named: the index row is committed after the file is fsynced (G1).
With replication.commitment_waits_for_peer, also only once every peer confirmed it: the report
waits for that (so the modality keeps its copy until both halves of the archive hold it), and
what is still unconfirmed after replication.commitment_wait_s is reported as failed.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import AE, build_context, build_role, evt
from pynetdicom.association import Association
from pynetdicom.dsutils import decode
from pynetdicom.events import Event
from pynetdicom.pdu import P_DATA_TF

from ..core.archive import Archive
from ..core.parsing import check_uid
from ..errors import InvalidInput, NotFound
from .pdata_writer import watches_only_n_messages
from .scu import Remote, associate
from .status import (
    CLASS_INSTANCE_CONFLICT,
    INVALID_ATTRIBUTE_VALUE,
    MISSING_ATTRIBUTE,
    NO_SUCH_ACTION,
    NO_SUCH_OBJECT_INSTANCE,
    PROCESSING_FAILURE,
    SUCCESS,
    status,
)
from .uids import StorageCommitmentPushModel, StorageCommitmentPushModelInstance

log = logging.getLogger(__name__)

REQUEST_STORAGE_COMMITMENT = 1  # ActionTypeID
ALL_COMMITTED, FAILURES_EXIST = 1, 2  # EventTypeID
_N_ACTION_RSP = 0x8130  # CommandField
_PEER_POLL_S = 0.2  # how often a waiting report looks at the peers' confirmations


_References = tuple[tuple[str, str], ...]  # (SOP Class UID, SOP Instance UID)


@dataclass(frozen=True)
class CommitmentRequest:
    transaction_uid: str
    references: _References
    requester: str  # calling AE title
    association: Association


class StorageCommitment:
    def __init__(self, ae: AE, archive: Archive, addresses: dict[str, Remote],
                 unconfirmed: Callable[[list[str]], set[str]] | None = None, peer_wait_s: float = 0.0) -> None:
        self.ae = ae
        self.archive = archive
        self.addresses = addresses
        # Set when commitment waits for the peers: SOP Instance UIDs -> those not yet confirmed.
        self.unconfirmed = unconfirmed
        self.peer_wait_s = peer_wait_s
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        # (TransactionUID, references) whose N-ACTION response has not been sent yet, per
        # association and Message ID; weak, so an association that died first is forgotten.
        self._waiting: WeakKeyDictionary[Association, dict[int, tuple[str, _References]]] = WeakKeyDictionary()
        # A report waiting for the peers holds a worker for up to peer_wait_s: more of them then.
        workers = 8 if unconfirmed else 2
        self._reports = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="commitment-report")

    @property
    def handlers(self) -> list[tuple[evt.EventType, Any]]:
        return [(evt.EVT_N_ACTION, self.on_action), (evt.EVT_PDU_SENT, self.on_pdu_sent)]

    def on_action(self, event: Event) -> tuple[Dataset | int, None]:
        try:
            if event.action_type != REQUEST_STORAGE_COMMITMENT:
                return status(NO_SUCH_ACTION, f"action type {event.action_type} is not defined"), None
            request = _parse(event.action_information)
        except (AttributeError, KeyError) as exc:
            return status(MISSING_ATTRIBUTE, f"missing attribute: {exc}"), None
        except InvalidInput as exc:
            return status(INVALID_ATTRIBUTE_VALUE, exc.message), None
        except Exception as exc:
            log.error("storage commitment request failed", exc_info=exc)
            return status(PROCESSING_FAILURE, type(exc).__name__), None
        with self._lock:
            self._waiting.setdefault(event.assoc, {})[int(event.request.MessageID or 0)] = request
        return SUCCESS, None

    @watches_only_n_messages
    def on_pdu_sent(self, event: Event) -> None:
        """Runs in the connection's thread for every PDU sent: must stay cheap and never block."""
        if event.assoc not in self._waiting:
            return
        message_id = _n_action_response_id(event.pdu)
        with self._lock:
            waiting = self._waiting.get(event.assoc, {}).pop(message_id, None) if message_id is not None else None
        if waiting is not None:
            transaction, references = waiting
            request = CommitmentRequest(transaction, references, event.assoc.requestor.ae_title, event.assoc)
            self._reports.submit(self._deliver, request)

    def shutdown(self) -> None:
        self._stopping.set()  # waiting reports go out now, with what is confirmed so far
        self._reports.shutdown(wait=True)

    def _report(self, request: CommitmentRequest) -> tuple[int, Dataset]:
        """The N-EVENT-REPORT's Event Type ID and Event Information (PS3.4 J.3.3.1.1)."""
        uids = [uid for _, uid in request.references]
        held = self._held(uids)
        elsewhere = self._await_peers([uid for uid in uids if uid in held])
        committed: list[Dataset] = []
        failed: list[Dataset] = []
        for sop_class, sop_instance in request.references:
            item = Dataset()
            item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = sop_class, sop_instance
            if sop_instance not in held:
                item.FailureReason = NO_SUCH_OBJECT_INSTANCE
            elif held[sop_instance] != sop_class:
                item.FailureReason = CLASS_INSTANCE_CONFLICT
            elif sop_instance in elsewhere:  # held here, not yet confirmed by every peer
                item.FailureReason = PROCESSING_FAILURE
            (failed if "FailureReason" in item else committed).append(item)
        info = Dataset()
        info.TransactionUID = request.transaction_uid
        info.RetrieveAETitle = self.ae.ae_title
        if committed:
            info.ReferencedSOPSequence = committed
        if failed:
            info.FailedSOPSequence = failed
        return (FAILURES_EXIST if failed else ALL_COMMITTED), info

    def _await_peers(self, uids: list[str]) -> set[str]:
        """Wait until every peer confirmed `uids`, or peer_wait_s passed; those still unconfirmed."""
        if self.unconfirmed is None:
            return set()
        deadline = time.monotonic() + self.peer_wait_s
        while (missing := self.unconfirmed(uids)) and time.monotonic() < deadline:
            if self._stopping.wait(_PEER_POLL_S):
                return self.unconfirmed(uids)
        return missing

    def _held(self, uids: list[str]) -> dict[str, str]:
        """SOP Instance UID -> SOP Class UID of the current versions held."""
        valid = [uid for uid in uids if UID(uid).is_valid]
        try:
            found = self.archive.instances(sop="\\".join(valid)) if valid else []
        except NotFound:
            return {}
        return {i.sop_instance_uid: i.sop_class_uid for i in found}

    def _deliver(self, request: CommitmentRequest) -> None:
        try:
            event_type, info = self._report(request)
            to = self.addresses.get(request.requester)
            if to is None:
                self._send(request.association, event_type, info, request)
                return
            assoc = associate(self.ae, to, [build_context(StorageCommitmentPushModel)],
                              [build_role(StorageCommitmentPushModel, scp_role=True)])
            try:
                self._send(assoc, event_type, info, request)
            finally:
                if assoc.is_established:
                    assoc.release()
        except Exception as exc:
            log.error("storage commitment report %s not delivered", request.transaction_uid, exc_info=exc)

    def _send(self, assoc: Association, event_type: int, info: Dataset, request: CommitmentRequest) -> None:
        if not assoc.is_established:
            log.error("storage commitment report %s for %s not delivered: no association",
                      request.transaction_uid, request.requester)
            return
        rsp, _ = assoc.send_n_event_report(info, event_type, StorageCommitmentPushModel,
                                           StorageCommitmentPushModelInstance)
        if rsp.get("Status") != SUCCESS:  # an empty Dataset when the peer did not answer
            log.error("storage commitment report %s: %s answered %s",
                      request.transaction_uid, request.requester, rsp.get("Status"))


def _parse(info: Dataset) -> tuple[str, _References]:
    transaction = check_uid("TransactionUID", str(info.TransactionUID))
    references = tuple((str(item.ReferencedSOPClassUID), str(item.ReferencedSOPInstanceUID))
                       for item in info.ReferencedSOPSequence)
    if not references:
        raise InvalidInput("ReferencedSOPSequence is empty")
    return transaction, references


def _n_action_response_id(pdu: object) -> int | None:
    """MessageIDBeingRespondedTo if `pdu` carries a whole N-ACTION-RSP command, else None."""
    if not isinstance(pdu, P_DATA_TF):
        return None
    for item in pdu.presentation_data_value_items:
        data = item.presentation_data_value or b""
        if data and data[0] & 0b11 == 0b11:  # message control header: command, last fragment
            command = decode(io.BytesIO(data[1:]), True, True)  # commands are implicit VR LE
            if command.get("CommandField") == _N_ACTION_RSP:
                return int(command.MessageIDBeingRespondedTo)
    return None
