"""The RIS link's domain (G9): patients and orders as the RIS states them, the referral a
radiologist sees beside the images, and the use cases the HL7 door calls. Nothing here knows
HL7, DICOM networking or SQL: the HL7 door turns messages into these commands, the index
keeps them, the worklist and the pages read them.

An order's life:  scheduled --(images stored with its accession)--> in progress (computed)
                  scheduled | in progress --ORC-1 CA/DC--> cancelled
                  any --ORC-1 XO--> the same status, fields replaced
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

from ..errors import InvalidInput, NotFound

log = logging.getLogger(__name__)


class Priority(str, Enum):
    """Order priority. The rank orders work everywhere (replication, prefetch, worklist)."""

    STAT = "STAT"
    ASAP = "ASAP"
    ROUTINE = "ROUTINE"

    @property
    def rank(self) -> int:
        return {"STAT": 2, "ASAP": 1, "ROUTINE": 0}[self.value]


class OrderStatus(str, Enum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


@dataclass(frozen=True)
class Patient:
    patient_id: str
    issuer: str = ""
    name: str = ""  # DICOM PN form: Family^Given
    birth_date: str = ""  # YYYYMMDD
    sex: str = ""


@dataclass(frozen=True)
class Code:
    """A coded procedure: value, coding scheme designator and meaning (PS3.3 8.8)."""

    value: str
    scheme: str = ""
    meaning: str = ""


@dataclass(frozen=True)
class Order:
    placer_number: str
    accession_number: str
    patient: Patient
    filler_number: str = ""
    procedure: Code = Code("")  # as the RIS sent it (its local code)
    mapped_procedure: Code | None = None  # from the terminology map; None = unmapped
    modality: str = ""
    body_part: str = ""
    scheduled_at: datetime | None = None
    station_ae: str = ""
    priority: Priority = Priority.ROUTINE
    referring_physician: str = ""
    reason: str = ""  # reason for exam / clinical question
    clinical_info: str = ""
    status: OrderStatus = OrderStatus.SCHEDULED
    id: int = 0  # the index's row id, 0 before it is stored

    def as_dict(self) -> dict[str, Any]:
        mapped = self.mapped_procedure
        return {
            "id": self.id, "placer_number": self.placer_number, "filler_number": self.filler_number,
            "accession_number": self.accession_number,
            "patient": {"id": self.patient.patient_id, "issuer": self.patient.issuer, "name": self.patient.name,
                        "birth_date": self.patient.birth_date, "sex": self.patient.sex},
            "procedure": {"code": self.procedure.value, "scheme": self.procedure.scheme,
                          "text": self.procedure.meaning},
            "mapped_procedure": ({"code": mapped.value, "scheme": mapped.scheme, "meaning": mapped.meaning}
                                 if mapped else None),
            "modality": self.modality, "body_part": self.body_part,
            "scheduled_at": self.scheduled_at.isoformat() if self.scheduled_at else None,
            "station_ae": self.station_ae, "priority": self.priority.value,
            "referring_physician": self.referring_physician, "reason": self.reason,
            "clinical_info": self.clinical_info, "status": self.status.value,
        }


@dataclass(frozen=True)
class MergeRecord:
    """An A40 merge as applied: enough to undo it (`reverse_merge`)."""

    id: int
    surviving: Patient
    prior_id: str
    prior_issuer: str
    studies: list[str] = field(default_factory=list)  # Study Instance UIDs moved
    orders: list[int] = field(default_factory=list)  # order ids moved
    reversed: bool = False


class RisIndex(Protocol):
    """What the RIS link keeps; index/ris.py implements it over SQL."""

    def upsert_patient(self, patient: Patient, at: datetime) -> None: ...
    def patient(self, patient_id: str, issuer: str) -> Patient | None: ...
    def order_by_placer(self, placer_number: str) -> Order | None: ...
    def order_by_accession(self, accession_number: str) -> Order | None: ...
    def save_order(self, order: Order, at: datetime) -> Order: ...
    def orders(self, **filters: Any) -> list[Order]: ...
    def merge_patients(self, surviving: Patient, prior_id: str, prior_issuer: str, at: datetime,
                       message_id: str) -> MergeRecord: ...
    def reverse_merge(self, merge_id: int, at: datetime, actor: str) -> MergeRecord: ...


class Ris:
    """The use cases of the RIS link. `on_order` listeners (prefetch, replication priority) are
    called after an order is stored, never before."""

    def __init__(self, index: RisIndex, procedure_map: Mapping[str, Code], clock: Callable[[], datetime]) -> None:
        self.index = index
        self.procedure_map = dict(procedure_map)
        self.clock = clock
        self.on_order: list[Callable[[Order], None]] = []

    def map_procedure(self, local: Code) -> Code | None:
        """The code sent to modalities for the RIS's local code; None when the map lacks it
        (the order is kept, and listed for reconciliation, never passed through silently)."""
        return self.procedure_map.get(local.value) if local.value else None

    # -- ADT -------------------------------------------------------------------------------

    def register_patient(self, patient: Patient) -> None:
        """A01/A04/A08: the RIS's demographics for this patient, created or replaced."""
        if not patient.patient_id:
            raise InvalidInput("the patient has no identifier (PID-3)")
        self.index.upsert_patient(patient, self.clock())

    def merge_patients(self, surviving: Patient, prior_id: str, prior_issuer: str = "",
                       message_id: str = "") -> MergeRecord:
        """A40: the prior identifier's studies and orders now belong to the surviving patient."""
        if not surviving.patient_id or not prior_id:
            raise InvalidInput("a merge needs the surviving (PID-3) and the prior (MRG-1) patient identifier")
        if (surviving.patient_id, surviving.issuer) == (prior_id, prior_issuer):
            raise InvalidInput(f"the surviving and the prior identifier are the same ({prior_id})")
        record = self.index.merge_patients(surviving, prior_id, prior_issuer, self.clock(), message_id)
        log.info("merged patient %s into %s: %d studies, %d orders", prior_id, surviving.patient_id,
                 len(record.studies), len(record.orders))
        return record

    def reverse_merge(self, merge_id: int, actor: str) -> MergeRecord:
        return self.index.reverse_merge(merge_id, self.clock(), actor)

    # -- orders ----------------------------------------------------------------------------

    def place_order(self, order: Order) -> Order:
        """NW: a new order. The same placer number again is a change only if nothing differs
        (a resent message); otherwise it is refused, since NW must not overwrite an order."""
        self._check(order)
        existing = self.index.order_by_placer(order.placer_number)
        order = replace(order, mapped_procedure=self.map_procedure(order.procedure))
        if existing is not None:
            if replace(existing, id=0) == order:
                return existing
            raise InvalidInput(f"order {order.placer_number} already exists; a change is sent as ORC-1 XO")
        clash = self.index.order_by_accession(order.accession_number)
        if clash is not None:
            raise InvalidInput(f"accession number {order.accession_number} already belongs to order "
                               f"{clash.placer_number}")
        return self._saved(order)

    def change_order(self, order: Order) -> Order:
        """XO: the order's fields replaced, its status kept."""
        self._check(order)
        existing = self._existing(order.placer_number)
        changed = replace(order, id=existing.id, status=existing.status,
                          mapped_procedure=self.map_procedure(order.procedure))
        return self._saved(changed)

    def cancel_order(self, placer_number: str) -> Order:
        """CA/DC: the order stays on record, cancelled, and leaves the worklist."""
        existing = self._existing(placer_number)
        return self._saved(replace(existing, status=OrderStatus.CANCELLED))

    def _existing(self, placer_number: str) -> Order:
        existing = self.index.order_by_placer(placer_number)
        if existing is None:
            raise NotFound(f"no order with placer number {placer_number}")
        return existing

    def _saved(self, order: Order) -> Order:
        saved = self.index.save_order(order, self.clock())
        for listener in self.on_order:
            try:
                listener(saved)
            except Exception:  # a listener's failure must not undo or hide a stored order
                log.exception("order listener failed for %s", saved.placer_number)
        return saved

    @staticmethod
    def _check(order: Order) -> None:
        if not order.placer_number:
            raise InvalidInput("the order has no placer order number (ORC-2)")
        if not order.accession_number:
            raise InvalidInput("the order has no accession number")
        if not order.patient.patient_id:
            raise InvalidInput("the order has no patient identifier (PID-3)")
        if len(order.accession_number) > 16:
            raise InvalidInput(f"accession number {order.accession_number!r} is longer than DICOM allows (16)")

    # -- reading ---------------------------------------------------------------------------

    def orders(self, **filters: Any) -> list[Order]:
        return self.index.orders(**filters)

    def order_for_accession(self, accession_number: str) -> Order | None:
        return self.index.order_by_accession(accession_number) if accession_number else None
