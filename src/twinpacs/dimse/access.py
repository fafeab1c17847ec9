"""Who may do what at the DIMSE door (issue 9), and what they did, for the access trail.

A calling AE is admitted at association when dicom.allowed_aes lists it (and, if its entry
names a host, the association comes from that address), or when dicom.accept_unknown_ae opens
the door to all. Anyone else gets A-ASSOCIATE-RJ (rejected permanent, calling AE title not
recognised). An admitted AE may always echo; store (C-STORE, Storage Commitment), find
(C-FIND, the worklist), get and move are checked per request and refused with 0x0124
"Refused: Not Authorized" (PS3.7 C.5: a general status, valid for every DIMSE service). A
C-MOVE must name a configured destination, and one of the AE's own when it has a list;
otherwise 0xA801 "Move Destination unknown" (PS3.4 C.4.2.1.4).

Besides allowed_aes, configured DIMSE peers are admitted without rights (their Storage
Commitment reports arrive on associations of their own), and DIMSE prefetch sources that
answer with C-MOVE may store (their sub-operations are C-STOREs to us); an allowed_aes entry
for the same title replaces these.

Every refusal is logged and recorded in the access trail, as is every C-FIND ("query"),
C-GET and C-MOVE ("retrieve"), and C-STORE ("store") once per association and study: the
stores are counted in memory and recorded when the connection closes, so ingest costs no
extra database write per instance."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any
from weakref import WeakKeyDictionary

from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_FIND, C_GET, C_MOVE, C_STORE, N_ACTION
from pynetdicom.events import Event

from ..config import DICOM_RIGHTS, Settings
from ..core.access_trail import AccessEntry, AccessTrail, Action, Outcome
from ..core.archive import StoreResult
from ..core.principal import Principal
from .handlers import ModalityWorklistInformationFind, text
from .status import CANCEL, PENDING

log = logging.getLogger(__name__)

NOT_AUTHORIZED = 0x0124  # PS3.7 C.5 general status "Refused: Not Authorized"
PENDING_WARNING = 0xFF01  # C-FIND pending, optional keys not supported
_REJECT_CALLING_AE = (0x01, 0x01, 0x03)  # rejected permanent, service user, calling AE title not recognised

# The right each request needs; C-ECHO and N-EVENT-REPORT (a peer's commitment report) need none.
_RIGHT_OF: dict[type, str] = {C_STORE: "store", N_ACTION: "store", C_FIND: "find", C_GET: "get", C_MOVE: "move"}
_SERVICE_OF: dict[type, str] = {C_STORE: "C-STORE", N_ACTION: "N-ACTION (storage commitment)", C_FIND: "C-FIND",
                                C_GET: "C-GET", C_MOVE: "C-MOVE"}
_ACTION_OF: dict[str, Action] = {"store": "store", "find": "query", "get": "retrieve", "move": "retrieve"}


@dataclass(frozen=True)
class Grant:
    rights: frozenset[str]
    host: str = ""  # the only address admitted; "" any
    move_to: frozenset[str] = frozenset()  # C-MOVE destinations; empty: any configured one


ALL_RIGHTS = Grant(frozenset(DICOM_RIGHTS))


def grants_from(settings: Settings) -> dict[str, Grant]:
    """Calling AE title → what it may do, from allowed_aes and the implicit grants above."""
    grants: dict[str, Grant] = {}
    for peer in settings.peers:
        if peer.kind == "dimse":
            grants[peer.ae_title] = Grant(frozenset())
    for source in settings.prefetch.sources:
        if source.kind == "dimse" and source.retrieve == "move":
            held = grants.get(source.ae_title, Grant(frozenset()))
            grants[source.ae_title] = Grant(held.rights | {"store"})
    for ae, allowed in settings.dicom.allowed_aes.items():
        grants[ae] = Grant(frozenset(allowed.rights), allowed.host, frozenset(allowed.move_to))
    return grants


def _same_host(expected: str, address: str) -> bool:
    try:
        actual = ip_address(address)
    except ValueError:
        return False
    mapped = getattr(actual, "ipv4_mapped", None)  # an IPv4 peer on a dual-stack listener
    return ip_address(expected) in (actual, mapped)


class DicomAccess:
    def __init__(self, settings: Settings, trail: AccessTrail) -> None:
        self.open = settings.dicom.accept_unknown_ae
        self.grants = grants_from(settings)
        self.destinations = settings.dicom.move_destinations
        self.trail = trail
        self._lock = threading.Lock()
        # Instances stored per association and (PatientID, StudyInstanceUID), until it closes.
        self._stored: WeakKeyDictionary[Association, Counter[tuple[str, str]]] = WeakKeyDictionary()

    def announce(self) -> None:
        """The door's state at every start: an open door is never silent."""
        if self.open:
            log.warning("DICOM door open: any calling AE may store, query and retrieve "
                        "(dicom.accept_unknown_ae)")
        elif not self.grants:
            log.warning("DICOM door closed to all: no calling AE is listed in dicom.allowed_aes, "
                        "every association will be rejected")
        else:
            log.info("DICOM door: calling AEs admitted: %s", ", ".join(sorted(self.grants)))

    def grant(self, ae: str, address: str) -> Grant | None:
        """What `ae` calling from `address` may do; None: reject the association."""
        found = self.grants.get(ae)
        if found is None:
            return ALL_RIGHTS if self.open else None
        return found if not found.host or _same_host(found.host, address) else None

    @property
    def handlers(self) -> list[tuple[evt.EventType, Any]]:
        return [(evt.EVT_REQUESTED, self.on_requested), (evt.EVT_CONN_CLOSE, self.on_close)]

    # -- association -------------------------------------------------------------------

    def on_requested(self, event: Event) -> None:
        """EVT_REQUESTED: reject an AE not admitted (pynetdicom then skips the negotiation),
        or limit an admitted one to its rights."""
        assoc = event.assoc
        ae = str(assoc.requestor.primitive.calling_ae_title).strip()
        address = str(assoc.requestor.address)
        grant = self.grant(ae, address)
        if grant is None:
            why = "comes from another address" if ae in self.grants else "is not recognised"
            self._refused(Principal(ae, "dicom", "ae", address), "login", f"association refused: calling AE {why}")
            assoc.acse.send_reject(*_REJECT_CALLING_AE)
            evt.trigger(assoc, evt.EVT_REJECTED, {})
            assoc.kill()  # as pynetdicom does after its own rejections: the RJ leaves first
            return
        if not grant.rights.issuperset(_RIGHT_OF.values()):
            self._guard(assoc, grant)

    def _guard(self, assoc: Association, grant: Grant) -> None:
        """Refuse the requests this association's AE has no right to, before any handler runs.

        A service class answers only through its handler, and pynetdicom's C-MOVE class
        associates with the destination before it takes a status: refusing at dispatch is the
        one way to answer every service with 0x0124 and nothing else. pynetdicom (pinned
        3.0.4) looks `_serve_request` up on the instance for every request."""
        serve = assoc._serve_request

        def serve_request(msg: Any, context_id: int) -> None:
            right = _RIGHT_OF.get(type(msg))
            if right is None or right in grant.rights or not msg.is_valid_request \
                    or context_id not in assoc._accepted_cx:
                serve(msg, context_id)  # allowed, or pynetdicom's own handling of a bad request
                return
            service = _SERVICE_OF[type(msg)]
            self._refused(principal(assoc), _ACTION_OF[right], f"{service} refused: no '{right}' right")
            assoc.dimse.send_msg(_refusal(msg, f"{ae_of(assoc)} may not use {service}"), context_id)

        assoc._serve_request = serve_request  # type: ignore[method-assign]

    # -- requests --------------------------------------------------------------------------

    def store(self, handler: Callable[..., tuple[Dataset | int, StoreResult | None]]) -> Callable[..., Dataset | int]:
        """EVT_C_STORE handler that counts what `handler` stored, per association and study."""
        def handle(event: Event, *args: Any) -> Dataset | int:
            status, stored = handler(event, *args)
            if stored is not None:  # success or a warning: stored
                with self._lock:
                    self._stored.setdefault(event.assoc, Counter())[stored.patient_id, stored.study_uid] += 1
            return status
        return handle

    def on_close(self, event: Event) -> None:
        """EVT_CONN_CLOSE (release, abort or a dropped connection): one trail entry per study stored."""
        with self._lock:
            stored = self._stored.pop(event.assoc, None)
        for (patient_id, study_uid), count in (stored or {}).items():
            self.trail.record(AccessEntry(principal(event.assoc), "store", "success", "dicom", patient_id, study_uid,
                                     f"C-STORE: {count} instance(s)"))

    def find(self, handler: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
        """EVT_C_FIND handler recording the query (its keys, how many matches) once it ends."""
        def handle(event: Event, *args: Any) -> Iterator[Any]:
            worklist = event.request.AffectedSOPClassUID == ModalityWorklistInformationFind
            service = "C-FIND (worklist)" if worklist else "C-FIND"
            yield from self._recorded(event, "query", service, handler(event, *args))
        return handle

    def get(self, handler: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
        def handle(event: Event, *args: Any) -> Iterator[Any]:
            yield from self._recorded(event, "retrieve", "C-GET", handler(event, *args))
        return handle

    def move(self, handler: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
        """EVT_C_MOVE handler: the destination must be configured, and among the AE's own if it
        has a list (else 0xA801, before any association to it); recorded as a retrieval when
        the caller moves to itself, as an export when to another AE."""
        def handle(event: Event, *args: Any) -> Iterator[Any]:
            destination = (event.move_destination or "").strip()
            # Objects sent to an AE other than the caller leave for another system: an export.
            action: Action = "retrieve" if destination == ae_of(event.assoc) else "export"
            grant = self.grant(ae_of(event.assoc), str(event.assoc.requestor.address))
            if destination not in self.destinations:
                why = "is not a configured destination"
            elif grant is not None and grant.move_to and destination not in grant.move_to:
                why = "is not among this AE's destinations"
            else:
                yield from self._recorded(event, action, f"C-MOVE to {destination}", handler(event, *args))
                return
            self._refused(principal(event.assoc), action, f"C-MOVE refused: {destination!r} {why}")
            yield None, None  # pynetdicom answers 0xA801 Move Destination unknown
        return handle

    def _recorded(self, event: Event, action: Action, service: str, responses: Iterator[Any]) -> Iterator[Any]:
        """Pass `responses` through; record one entry when they end (or pynetdicom stops asking)."""
        matches = 0
        outcome: Outcome = "success"
        try:
            for response in responses:
                if isinstance(response, tuple) and len(response) == 2:
                    code = _status_of(response[0])
                    if code in (PENDING, PENDING_WARNING):
                        matches += 1
                    elif code is not None and _is_failure(code):
                        outcome = "failed"
                yield response
        finally:
            patient_id, study_uid, keys = _query_keys(event)
            counted = "match(es)" if action == "query" else "object(s)"
            self.trail.record(AccessEntry(principal(event.assoc), action, outcome, "dicom", patient_id, study_uid,
                                     f"{' '.join(filter(None, (service, keys)))}: {matches} {counted}"))

    # -- trail -----------------------------------------------------------------------------

    def _refused(self, who: Principal, action: Action, detail: str) -> None:
        log.warning("DICOM %s (calling AE %s at %s)", detail, who.name, who.address)
        self.trail.record(AccessEntry(who, action, "refused", "dicom", detail=detail))


def ae_of(assoc: Association) -> str:
    return str(assoc.requestor.ae_title).strip()


def principal(assoc: Association) -> Principal:
    return Principal(ae_of(assoc), "dicom", "ae", str(assoc.requestor.address))


def _refusal(request: Any, comment: str) -> Any:
    """The response to `request` with status 0x0124."""
    rsp = type(request)()
    rsp.MessageIDBeingRespondedTo = request.MessageID
    rsp.Status = NOT_AUTHORIZED
    rsp.ErrorComment = comment[:64]  # LO
    if isinstance(request, N_ACTION):
        rsp.AffectedSOPClassUID = request.RequestedSOPClassUID
        rsp.AffectedSOPInstanceUID = request.RequestedSOPInstanceUID
        rsp.ActionTypeID = request.ActionTypeID
    else:
        rsp.AffectedSOPClassUID = request.AffectedSOPClassUID
        if isinstance(request, C_STORE):
            rsp.AffectedSOPInstanceUID = request.AffectedSOPInstanceUID
    return rsp


def _is_failure(code: int) -> bool:
    """PS3.7 C.1: everything but success, pending, cancel and the warnings is a failure."""
    return not (code in (0x0000, 0x0001, 0x0107, 0x0116, CANCEL, PENDING, PENDING_WARNING)
                or 0xB000 <= code <= 0xBFFF)


def _status_of(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, Dataset) and "Status" in value:
        return int(value.Status)
    return None


def _query_keys(event: Event) -> tuple[str, str, str]:
    """PatientID, StudyInstanceUID and a short description of a C-FIND/GET/MOVE identifier."""
    try:
        identifier = event.identifier
    except Exception:
        return "", "", ""
    patient_id = text(identifier["PatientID"]) if "PatientID" in identifier else ""
    study_uid = text(identifier["StudyInstanceUID"]) if "StudyInstanceUID" in identifier else ""
    level = str(identifier.get("QueryRetrieveLevel", "") or "")
    keys = [f"{k}={v}" for k, v in (("PatientID", patient_id), ("StudyInstanceUID", study_uid)) if v]
    return patient_id, study_uid, " ".join([level, *keys]).strip()
