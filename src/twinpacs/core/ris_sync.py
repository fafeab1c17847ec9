"""Replication of the RIS state to twinpacs peers: orders, RIS patients and study corrections
(study_overrides) reach every twinpacs peer, so that after a failover the standby shows the same
worklist, the same referrals and the same corrected identities (G4, G6, G9). DIMSE peers are
other archives and get none of it.

What is sent: every row whose version (index: ris_versions) is newer than the revision the peer
confirmed, oldest first, as its current state (a study whose corrections were undone is sent
with no corrections). A row that came from a peer is never sent back to it. A peer confirms a
batch by answering for each change; the confirmed revision then moves past the batch. A peer
that is down leaves the changes pending, counted exactly, retried with backoff; they are never
given up on (a standby without the worklist is what this prevents), the last error stays visible.

Conflict rule (`decide`), when a peer's version of a row arrives at a site holding one:
  - the same origin: the later revision at that origin wins; the same one again changes
    nothing (a resent batch is harmless);
  - different origins: an active site keeps its own change, since HL7 goes to the active site
    and a standby normally originates no RIS change; any other site takes the incoming one.
  So the active site's latest revision wins, and after a failover the new active site's does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ..errors import InvalidInput
from .archive import utcnow
from .model import PATIENT_KEYS
from .replication import IDLE_WAIT_S, STOP_JOIN_S, Policy, backoff
from .ris import Code, Order, OrderStatus, Patient, Priority

log = logging.getLogger(__name__)

ORDER, PATIENT, STUDY = "order", "patient", "study"
KINDS = (ORDER, PATIENT, STUDY)
CORRECTABLE = (*PATIENT_KEYS, "AccessionNumber")  # as index/corrections.py corrects them
# What a receiving site did with a change: took it, held it already (or a later one from the
# same origin), or kept its own conflicting version (the rule above).
APPLIED, HELD, KEPT = "applied", "held", "kept"
BATCH = 200  # changes per request: each is a few hundred bytes
MAX_CHANGES = 1000  # per request, as a receiver accepts them


def patient_key(patient_id: str, issuer: str) -> str:
    """A RIS patient's row key: identifier and issuer (a backslash never occurs in either)."""
    return f"{patient_id}\\{issuer}"


@dataclass(frozen=True)
class RisChange:
    """One row's state as its origin last changed it; `data` None: a study without corrections."""

    kind: str
    key: str
    origin: str  # the site that made this version
    revision: int  # its revision there
    data: dict[str, Any] | None

    def as_wire(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "origin": self.origin, "revision": self.revision,
                "data": self.data}


@dataclass(frozen=True)
class Version:
    """The version of a row a site holds: origin '' is a change made at this site."""

    origin: str
    revision: int


def decide(held: Version | None, incoming: RisChange, here: str, here_active: bool) -> str:
    """APPLIED, HELD or KEPT for `incoming` at site `here` (the rule in the module docstring)."""
    if incoming.origin == here:
        return HELD  # our own change, come back by way of a third site
    if held is None:
        return APPLIED
    if held.origin == incoming.origin:
        return APPLIED if incoming.revision > held.revision else HELD
    if held.origin == "" and here_active:
        return KEPT
    return APPLIED


# -- what a change carries, checked on arrival --------------------------------------------------

def _text(data: Any, key: str, where: str) -> str:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, str):
        raise InvalidInput(f"{where}: {key!r} must be a string")
    return value


def order_data(order: Order) -> dict[str, Any]:
    data = order.as_dict()
    del data["id"]  # each site numbers its own rows
    return data


def order_from_data(data: dict[str, Any], where: str = "order") -> Order:
    patient, procedure, mapped = data.get("patient"), data.get("procedure"), data.get("mapped_procedure")
    scheduled = data.get("scheduled_at")
    try:
        at = datetime.fromisoformat(scheduled) if scheduled is not None else None
        if at is not None and at.tzinfo is None:
            raise ValueError("no UTC offset")
        priority, status = Priority(data.get("priority")), OrderStatus(data.get("status"))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{where}: bad scheduled_at, priority or status ({exc})") from None
    return Order(
        placer_number=_text(data, "placer_number", where), accession_number=_text(data, "accession_number", where),
        patient=Patient(*(_text(patient, k, f"{where} patient") for k in ("id", "issuer", "name", "birth_date", "sex"))),
        filler_number=_text(data, "filler_number", where),
        procedure=Code(*(_text(procedure, k, f"{where} procedure") for k in ("code", "scheme", "text"))),
        mapped_procedure=(Code(*(_text(mapped, k, f"{where} mapped_procedure") for k in ("code", "scheme", "meaning")))
                          if mapped is not None else None),
        modality=_text(data, "modality", where), body_part=_text(data, "body_part", where), scheduled_at=at,
        station_ae=_text(data, "station_ae", where), priority=priority,
        referring_physician=_text(data, "referring_physician", where), reason=_text(data, "reason", where),
        clinical_info=_text(data, "clinical_info", where), status=status,
    )


PATIENT_FIELDS = ("PatientID", "IssuerOfPatientID", "PatientName", "PatientBirthDate", "PatientSex", "merged_into")


def _check_data(change: RisChange, where: str) -> None:
    data = change.data
    if change.kind == ORDER:
        order = order_from_data(data, where) if data is not None else None
        if order is None or order.placer_number != change.key:
            raise InvalidInput(f"{where}: an order's data must be the order with placer number {change.key!r}")
        if not order.accession_number or len(order.accession_number) > 16 or not order.patient.patient_id:
            raise InvalidInput(f"{where}: order {change.key} needs an accession number (at most 16 characters) "
                               "and a patient identifier")
    elif change.kind == PATIENT:
        if data is None:
            raise InvalidInput(f"{where}: a patient's data is missing")
        values = [_text(data, k, where) for k in PATIENT_FIELDS]
        if patient_key(values[0], values[1]) != change.key or not values[0]:
            raise InvalidInput(f"{where}: the patient's identity does not match its key {change.key!r}")
    elif data is not None:
        parts = [data.get("attributes"), data.get("original")]
        for part in parts:
            if not isinstance(part, dict) or not all(k in CORRECTABLE and isinstance(v, str) for k, v in part.items()):
                raise InvalidInput(f"{where}: study corrections must map {', '.join(CORRECTABLE)} to strings")
        if not parts[0] or set(parts[0]) != set(parts[1]):
            raise InvalidInput(f"{where}: each corrected attribute needs its original value")


def parse_changes(raw: Any) -> list[RisChange]:
    """The changes of a request body; InvalidInput naming the first bad one (nothing applied)."""
    if not isinstance(raw, list) or not raw:
        raise InvalidInput('"changes" must be a non-empty list')
    if len(raw) > MAX_CHANGES:
        raise InvalidInput(f"at most {MAX_CHANGES} changes per request")
    changes = []
    for n, item in enumerate(raw):
        where = f"change {n}"
        kind, key, origin = (_text(item, k, where) for k in ("kind", "key", "origin"))
        revision = item.get("revision")
        if kind not in KINDS:
            raise InvalidInput(f"{where}: kind must be one of {', '.join(KINDS)}")
        if not key or not origin or not isinstance(revision, int) or isinstance(revision, bool) or revision < 1:
            raise InvalidInput(f"{where}: needs a key, an origin and a positive integer revision")
        if item.get("data") is not None and not isinstance(item["data"], dict):
            raise InvalidInput(f"{where}: data must be an object or null")
        change = RisChange(kind, key, origin, revision, item.get("data"))
        _check_data(change, where)
        changes.append(change)
    return changes


# -- the sender -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Batch:
    changes: list[RisChange]
    upto: int  # the peer has everything up to this revision once it confirmed `changes`
    confirmed: int  # what it had confirmed before


class RisSyncStore(Protocol):
    def outgoing(self, peer: str, limit: int) -> Batch: ...
    def confirm(self, peer: str, upto: int, at: datetime) -> None: ...
    def failed(self, peer: str, error: str, at: datetime) -> None: ...


class RisPeerClient(Protocol):
    """Sends changes to one twinpacs peer: '' when the peer answered for every one, else why not."""

    name: str

    def send(self, changes: Sequence[RisChange]) -> str: ...
    def close(self) -> None: ...


class RisSender:
    """The loop for one peer: send what it lacks, oldest first; after a failure, wait (backoff)."""

    def __init__(self, store: RisSyncStore, client: RisPeerClient, policy: Policy,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.client = client
        self.policy = policy
        self.clock = clock
        self.attempts = 0  # failed sends in a row
        self.wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Send one batch; the changes the peer confirmed (0: nothing to send). Raises nothing
        for the peer's failure: it is recorded, and `attempts` grows."""
        batch = self.store.outgoing(self.client.name, BATCH)
        if not batch.changes:
            if batch.upto > batch.confirmed:  # only changes that came from the peer itself
                self.store.confirm(self.client.name, batch.upto, self.clock())
            return 0
        try:
            error = self.client.send(batch.changes)
        except Exception as exc:  # a client bug must not kill the sender
            log.exception("RIS replication to %s: client failed", self.client.name)
            error = f"{type(exc).__name__}: {exc}"
        if error:
            self.attempts += 1
            self.store.failed(self.client.name, f"attempt {self.attempts}: {error}", self.clock())
            return 0
        self.attempts = 0
        self.store.confirm(self.client.name, batch.upto, self.clock())
        return len(batch.changes)

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=f"ris-sync-{self.client.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(STOP_JOIN_S)
        self.client.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.wake.clear()  # before looking, so a change during the send wakes us again
            try:
                if self.run_once():
                    continue
            except Exception:  # e.g. the database is briefly unavailable: log, wait, go on
                log.exception("RIS replication to %s: batch failed", self.client.name)
            if self.attempts:  # a new change does not cut a backoff short; a stop does
                self._stopping.wait(backoff(self.attempts, self.policy))
            else:
                self.wake.wait(IDLE_WAIT_S)


class RisSync:
    """The background service: one sender per twinpacs peer, woken by every order saved."""

    def __init__(self, store: RisSyncStore, clients: Sequence[RisPeerClient], policy: Policy) -> None:
        self.senders = {c.name: RisSender(store, c, policy) for c in clients}

    def wake(self, *_: object) -> None:
        for sender in self.senders.values():
            sender.wake.set()

    def start(self) -> None:
        for sender in self.senders.values():
            sender.start()

    def stop(self) -> None:
        for sender in self.senders.values():
            sender.stop()
