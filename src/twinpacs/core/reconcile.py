"""Linking stored studies to their orders (G9): the rules that say whether a study and an
order belong together, what goes on the reconciliation list and why, and the corrections an
administrator applies from it. Nothing here knows SQL or DICOM networking: index/reconcile.py
finds the candidates and applies the corrections, the doors (CLI, HTTP) call `Reconciliation`.

A study is linked to an order by its Accession Number; the link is trusted when the patient
agrees too. The list holds
  no-order            a stored study whose accession is empty or belongs to no order,
  patient-mismatch    a linked study whose patient differs from its order's (or from the
                      patient as the RIS registered it since),
  unmapped-procedure  a live order whose procedure code the terminology map lacks.
Corrections change the index and what DICOMweb metadata shows (study_overrides), never the
stored files (G2), and each one is recorded in the operator log."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import ConfigurationError, InvalidInput, NotFound
from .ris import MergeRecord, Order, OrderStatus, Patient, Priority

# What a worklist entry's Study Instance UID is derived from: the same accession number always
# gives the same UID (PS3.5 B.2, UUID-derived 2.25 form), so the modality's images link back.
_STUDY_UID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:twinpacs:order-study")

# DICOM priority of a requested procedure (PS3.3 C.4.11, RequestedProcedurePriority).
DICOM_PRIORITY = {Priority.STAT: "STAT", Priority.ASAP: "HIGH", Priority.ROUTINE: "ROUTINE"}


def study_uid_for(accession_number: str) -> str:
    return f"2.25.{uuid.uuid5(_STUDY_UID_NAMESPACE, accession_number).int}"


def local_zone(name: str) -> tzinfo | None:
    """The hospital's time zone ([hl7] timezone); None is this machine's local time."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"hl7.timezone: {name!r} is not an IANA time zone") from None


def local_day_bounds(first: str, last: str, zone: tzinfo | None) -> tuple[datetime | None, datetime | None]:
    """The instants from the start of local day `first` to the end of local day `last`
    (YYYYMMDD each, '' for open), in UTC: the index compares times as UTC (SQLite keeps no offset)."""
    def start(day: str, later: int = 0) -> datetime:
        try:
            naive = datetime.strptime(day, "%Y%m%d") + timedelta(days=later)
        except ValueError:
            raise InvalidInput(f"{day!r} is not a date (YYYYMMDD)") from None
        return (naive.replace(tzinfo=zone) if zone else naive.astimezone()).astimezone(timezone.utc)
    # The next local day's start, not 24 hours on: a day with a DST change has 23 or 25.
    return start(first) if first else None, start(last, 1) - timedelta(microseconds=1) if last else None


def same_issuer(a: str, b: str) -> bool:
    """An empty issuer matches any: modalities often leave IssuerOfPatientID out."""
    return not a or not b or a == b


def _name_key(name: str) -> str:
    # PN "DOE^JOHN^^" and "Doe^John" name the same person; trailing empty components and case do not count.
    return "^".join(part.strip() for part in name.upper().split("=")[0].split("^")).rstrip("^")


@dataclass(frozen=True)
class StudySummary:
    """A stored study as the index shows it (corrections included)."""

    uid: str
    patient: Patient
    accession_number: str = ""
    study_date: str = ""
    description: str = ""
    modalities: str = ""

    def as_dict(self) -> dict[str, Any]:
        p = self.patient
        return {"uid": self.uid, "accession_number": self.accession_number, "study_date": self.study_date,
                "description": self.description, "modalities": self.modalities,
                "patient": {"id": p.patient_id, "issuer": p.issuer, "name": p.name,
                            "birth_date": p.birth_date, "sex": p.sex}}


@dataclass(frozen=True)
class Difference:
    attribute: str  # DICOM keyword
    study: str  # the study's value
    expected: str  # the order's or the RIS's value
    source: str  # "order" or "ris"

    def as_dict(self) -> dict[str, str]:
        return {"attribute": self.attribute, "study": self.study, "expected": self.expected, "source": self.source}


def patient_differences(study: Patient, expected: Patient, source: str) -> list[Difference]:
    """What disagrees between the images' patient and the RIS's. A value one side lacks is not
    a disagreement (except the identifier), nor is the case or padding of a name."""
    found: list[Difference] = []
    if study.patient_id != expected.patient_id:
        found.append(Difference("PatientID", study.patient_id, expected.patient_id, source))
    if not same_issuer(study.issuer, expected.issuer):
        found.append(Difference("IssuerOfPatientID", study.issuer, expected.issuer, source))
    if study.name and expected.name and _name_key(study.name) != _name_key(expected.name):
        found.append(Difference("PatientName", study.name, expected.name, source))
    for keyword, mine, theirs in (("PatientBirthDate", study.birth_date, expected.birth_date),
                                  ("PatientSex", study.sex, expected.sex)):
        if mine and theirs and mine.strip().upper() != theirs.strip().upper():
            found.append(Difference(keyword, mine, theirs, source))
    return found


def patient_matches(study: Patient, order: Order) -> bool:
    """The referral's check: the study's patient identifier is the order's."""
    return study.patient_id == order.patient.patient_id and same_issuer(study.issuer, order.patient.issuer)


def referral(study: StudySummary, order: Order) -> dict[str, Any]:
    """What the radiologist sees beside the images: who asked, why, how urgent."""
    o = order.as_dict()
    return {
        "study": study.uid, "accession_number": order.accession_number, "reason": order.reason,
        "clinical_info": order.clinical_info, "referring_physician": order.referring_physician,
        "priority": order.priority.value, "order_status": order.status.value,
        "placer_number": order.placer_number, "filler_number": order.filler_number,
        "procedure": {"local": o["procedure"], "mapped": o["mapped_procedure"]},
        "modality": order.modality, "body_part": order.body_part, "scheduled_at": o["scheduled_at"],
        "patient": o["patient"], "patient_matches": patient_matches(study.patient, order),
        "study_patient": study.as_dict()["patient"],
    }


@dataclass(frozen=True)
class Item:
    """One entry of the reconciliation list."""

    kind: str  # no-order | patient-mismatch | unmapped-procedure
    study: StudySummary | None
    order: Order | None
    problem: str
    action: str
    differences: list[Difference] = field(default_factory=list)
    candidates: list[str] = field(default_factory=list)  # placer numbers of orders that may fit

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "study": self.study.as_dict() if self.study else None,
                "order": self.order.as_dict() if self.order else None, "problem": self.problem,
                "differences": [d.as_dict() for d in self.differences], "candidates": self.candidates,
                "action": self.action}


@dataclass(frozen=True)
class LinkedStudy:
    """A study, the order its accession names, and the RIS-registered patient of that order."""

    study: StudySummary
    order: Order
    ris_patient: Patient | None


@dataclass(frozen=True)
class MergeListing:
    record: MergeRecord
    at: datetime
    message_id: str
    reversed_at: datetime | None
    reversed_by: str

    def as_dict(self) -> dict[str, Any]:
        r, s = self.record, self.record.surviving
        return {"id": r.id, "at": self.at.isoformat(), "message_id": self.message_id,
                "surviving": {"id": s.patient_id, "issuer": s.issuer, "name": s.name},
                "prior": {"id": r.prior_id, "issuer": r.prior_issuer}, "studies": r.studies, "orders": r.orders,
                "reversed": r.reversed, "reversed_at": self.reversed_at.isoformat() if self.reversed_at else None,
                "reversed_by": self.reversed_by}


class ReconcileStore(Protocol):
    """What index/reconcile.py provides. Candidate queries may return more than belongs on
    the list (they cannot compare names as the rules here do); never less."""

    def unlinked_studies(self, limit: int) -> tuple[list[StudySummary], int]: ...
    def mismatch_candidates(self) -> list[LinkedStudy]: ...
    def live_orders_without(self, codes: Iterable[str]) -> list[Order]: ...
    def orders_for_patients(self, patient_ids: Iterable[str]) -> dict[str, list[Order]]: ...
    def study(self, uid: str) -> StudySummary | None: ...
    def ris_patient(self, patient_id: str, issuer: str) -> Patient | None: ...
    def link(self, study_uid: str, values: dict[str, str], at: datetime, actor: str, reason: str,
             details: dict[str, Any]) -> dict[str, dict[str, str]]: ...
    def merges(self, limit: int) -> list[MergeListing]: ...
    def reverse_merge(self, merge_id: int, at: datetime, actor: str, reason: str) -> MergeRecord: ...


class Reconciliation:
    """The list, the referral, and the corrections made from them. `order_by("accession" |
    "placer", number)` finds an order; `procedure_codes` are the terminology map's local codes."""

    def __init__(self, store: ReconcileStore, order_by: Callable[[str, str], Order | None],
                 procedure_codes: Iterable[str], clock: Callable[[], datetime]) -> None:
        self.store = store
        self.order_by = order_by
        self.procedure_codes = set(procedure_codes)
        self.clock = clock

    def items(self, limit: int = 200) -> dict[str, Any]:
        """The list, each kind newest first and cut at `limit`, with the exact total of each."""
        if limit < 1:
            raise InvalidInput("limit must be a positive integer")
        unlinked, unlinked_total = self.store.unlinked_studies(limit)
        candidates = self.store.orders_for_patients({s.patient.patient_id for s in unlinked})
        items = [self._no_order(s, candidates.get(s.patient.patient_id, [])) for s in unlinked]
        mismatched = [m for m in (self._mismatch(c) for c in self.store.mismatch_candidates()) if m]
        unmapped = [self._unmapped(o) for o in self.store.live_orders_without(self.procedure_codes)]
        totals = {"no-order": unlinked_total, "patient-mismatch": len(mismatched),
                  "unmapped-procedure": len(unmapped)}
        items += mismatched[:limit] + unmapped[:limit]
        return {"totals": totals, "items": [i.as_dict() for i in items]}

    @staticmethod
    def _no_order(study: StudySummary, orders: list[Order]) -> Item:
        fitting = [o.placer_number for o in orders
                   if o.status is not OrderStatus.CANCELLED and same_issuer(o.patient.issuer, study.patient.issuer)]
        problem = (f"accession number {study.accession_number} belongs to no order" if study.accession_number
                   else "the study has no accession number")
        return Item("no-order", study, None, problem,
                    f"link it: twinpacs reconcile apply {study.uid} --order PLACER --reason TEXT", candidates=fitting)

    @staticmethod
    def _mismatch(linked: LinkedStudy) -> Item | None:
        study, order = linked.study, linked.order
        differences = patient_differences(study.patient, order.patient, "order")
        if linked.ris_patient is not None:
            seen = {d.attribute for d in differences}
            differences += [d for d in patient_differences(study.patient, linked.ris_patient, "ris")
                            if d.attribute not in seen]
        if not differences:
            return None
        return Item("patient-mismatch", study, order,
                    "the study's patient differs from " + ", ".join(sorted({d.source for d in differences})),
                    f"if the order is right: twinpacs reconcile apply {study.uid} --accession "
                    f"{order.accession_number} --reason TEXT; else correct the order in the RIS",
                    differences=differences)

    @staticmethod
    def _unmapped(order: Order) -> Item:
        code = order.procedure.value
        problem = (f"procedure code {code!r} ({order.procedure.meaning}) is not in the terminology map" if code
                   else "the order has no procedure code")
        action = (f'add [ris.procedure_codes."{code}"] (code, scheme, meaning) to the configuration' if code
                  else "have the RIS send the requested procedure (OBR-4)")
        return Item("unmapped-procedure", None, order, problem, action)

    def referral(self, study_uid: str) -> dict[str, Any]:
        """The order of a stored study, found by its accession number; NotFound says why not."""
        study = self.store.study(study_uid)
        if study is None:
            raise NotFound(f"no study {study_uid} is held here")
        if not study.accession_number:
            raise NotFound(f"study {study_uid} has no accession number, so no order (see the reconciliation list)")
        order = self.order_by("accession", study.accession_number)
        if order is None:
            raise NotFound(f"no order has accession number {study.accession_number} of study {study_uid} "
                           "(see the reconciliation list)")
        return referral(study, order)

    # -- corrections -------------------------------------------------------------------------

    def target_patient(self, order: Order) -> Patient:
        """Who the images should name: the RIS-registered patient where it says more than the order."""
        ris = self.store.ris_patient(order.patient.patient_id, order.patient.issuer)
        if ris is None:
            return order.patient
        o = order.patient
        return Patient(o.patient_id, o.issuer or ris.issuer, ris.name or o.name,
                       ris.birth_date or o.birth_date, ris.sex or o.sex)

    def apply(self, study_uid: str, reason: str, actor: str, accession_number: str = "",
              placer_number: str = "") -> dict[str, Any]:
        """Link the study to the order: its accession and patient become the order's in the
        index and in DICOMweb metadata. One transaction with its operator log entry."""
        if not reason.strip():
            raise InvalidInput("a correction needs a reason (it is recorded in the operator log)")
        if not actor.strip():
            raise InvalidInput("a correction needs to know who makes it (actor is empty)")
        if bool(accession_number) == bool(placer_number):
            raise InvalidInput("name the order by exactly one of accession number or placer number")
        by, key = ("accession", accession_number) if accession_number else ("placer", placer_number)
        order = self.order_by(by, key)
        if order is None:
            raise NotFound(f"no order with {by} number {key}")
        if order.status is OrderStatus.CANCELLED:
            raise InvalidInput(f"order {order.placer_number} is cancelled; the RIS must reinstate it first")
        if self.store.study(study_uid) is None:
            raise NotFound(f"no study {study_uid} is held here")
        patient = self.target_patient(order)
        values = {"AccessionNumber": order.accession_number, "PatientID": patient.patient_id,
                  "IssuerOfPatientID": patient.issuer, "PatientName": patient.name,
                  "PatientBirthDate": patient.birth_date, "PatientSex": patient.sex}
        changes = self.store.link(study_uid, {k: v for k, v in values.items() if v}, self.clock(),
                                  actor.strip(), reason.strip(),
                                  {"order": order.placer_number, "accession_number": order.accession_number})
        return {"study": study_uid, "order": order.placer_number, "accession_number": order.accession_number,
                "changes": changes}

    def merges(self, limit: int = 200) -> list[dict[str, Any]]:
        if limit < 1:
            raise InvalidInput("limit must be a positive integer")
        return [m.as_dict() for m in self.store.merges(limit)]

    def unmerge(self, merge_id: int, reason: str, actor: str) -> MergeRecord:
        """Undo an A40 merge by its record: studies, orders and the RIS patient go back."""
        if not reason.strip():
            raise InvalidInput("an unmerge needs a reason (it is recorded in the operator log)")
        if not actor.strip():
            raise InvalidInput("an unmerge needs to know who makes it (actor is empty)")
        return self.store.reverse_merge(merge_id, self.clock(), actor.strip(), reason.strip())
