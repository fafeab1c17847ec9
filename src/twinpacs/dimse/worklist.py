"""The Modality Worklist SCP (PS3.4 K): C-FIND on the Modality Worklist Information Model,
answered from the orders that are scheduled (cancelled ones are off the list).

Matching (PS3.4 C.2.2.2, K.6.1.2): any key the worklist has a value for, at the top level or
inside the one Scheduled Procedure Step item, with single value, wildcard (PN ignoring case),
list (CS) or date range matching; the usual ones are ScheduledStationAETitle, Modality,
ScheduledProcedureStepStartDate, PatientID, AccessionNumber and PatientName. Dates and times
are the hospital's local time ([hl7] timezone, else this machine's). Each answer holds
exactly the requested keys. The Study Instance UID is derived from the accession number
(core.reconcile.study_uid_for), so the modality's images carry it and link back."""

from __future__ import annotations

import logging
from datetime import tzinfo
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pynetdicom.events import Event

from ..core.query import Match, MatchKind, match_for, matches
from ..core.reconcile import DICOM_PRIORITY, local_day_bounds, study_uid_for
from ..core.ris import Order, OrderStatus, Ris
from ..errors import InvalidQuery
from .handlers import FindResponses, pending_then_success, text
from .status import failure

log = logging.getLogger(__name__)

SPS = "ScheduledProcedureStepSequence"
CODE_SEQUENCE = "RequestedProcedureCodeSequence"
_CONTROL_KEYWORDS = {"SpecificCharacterSet", "QueryRetrieveLevel"}
_MAX_LENGTH = {"AE": 16, "CS": 16, "SH": 16, "LO": 64, "PN": 64 * 3 + 2}
_MAX_ORDERS = 10_000  # a worklist query without any key narrowing it still ends

Entry = dict[str, Any]  # keyword -> DICOM text; SPS -> dict; CODE_SEQUENCE -> dict or None


class Worklist:
    def __init__(self, ris: Ris, zone: tzinfo | None = None, max_results: int | None = None) -> None:
        self.ris = ris
        self.zone = zone
        self.max_results = max_results  # limits.max_query_results

    def handle_find(self, event: Event) -> FindResponses:
        try:
            identifier = event.identifier
            top, step = _criteria(identifier)
            found = [e for e in map(self.entry, self._candidates(top, step))
                     if _matching(top, e) and _matching(step, e[SPS])]
        except Exception as exc:
            yield failure(exc, "C-FIND (worklist)"), None
            return
        yield from pending_then_success(event, (_response(identifier, e) for e in found),
                                        self.max_results, "C-FIND (worklist)")

    def _candidates(self, top: dict[str, Match], step: dict[str, Match]) -> list[Order]:
        """Scheduled orders, narrowed in SQL by the exact keys and the date range given."""
        filters: dict[str, Any] = {"status": OrderStatus.SCHEDULED.value, "limit": _MAX_ORDERS}
        for name, match in (("patient_id", top.get("PatientID")), ("accession_number", top.get("AccessionNumber")),
                            ("modality", step.get("Modality")), ("station_ae", step.get("ScheduledStationAETitle"))):
            if match is not None and match.kind is MatchKind.SINGLE:
                filters[name] = match.values[0]
        date = step.get("ScheduledProcedureStepStartDate")
        if date is not None and date.kind in (MatchKind.SINGLE, MatchKind.RANGE):
            first, last = (date.values[0], date.values[0]) if date.kind is MatchKind.SINGLE else (date.lower, date.upper)
            bounds = local_day_bounds(first, last, self.zone)
            filters.update({k: v for k, v in zip(("scheduled_from", "scheduled_to"), bounds) if v is not None})
        found = self.ris.orders(**filters)
        if len(found) == _MAX_ORDERS:
            log.warning("worklist query matched %d or more scheduled orders; answered with the first", _MAX_ORDERS)
        return found

    def entry(self, order: Order) -> Entry:
        """The worklist item of an order, every value as DICOM text."""
        local = order.scheduled_at.astimezone(self.zone) if order.scheduled_at else None
        code = order.mapped_procedure or self.ris.map_procedure(order.procedure)
        description = code.meaning if code and code.meaning else order.procedure.meaning
        p = order.patient
        return {
            "PatientName": p.name, "PatientID": p.patient_id, "IssuerOfPatientID": p.issuer,
            "PatientBirthDate": p.birth_date, "PatientSex": p.sex,
            "AccessionNumber": order.accession_number, "ReferringPhysicianName": order.referring_physician,
            "RequestedProcedureID": order.accession_number, "RequestedProcedureDescription": description,
            "RequestedProcedurePriority": DICOM_PRIORITY[order.priority],
            "ReasonForTheRequestedProcedure": order.reason, "StudyInstanceUID": study_uid_for(order.accession_number),
            CODE_SEQUENCE: ({"CodeValue": code.value, "CodingSchemeDesignator": code.scheme, "CodeMeaning": code.meaning}
                            if code else None),
            SPS: {
                "Modality": order.modality, "ScheduledStationAETitle": order.station_ae,
                "ScheduledProcedureStepStartDate": local.strftime("%Y%m%d") if local else "",
                "ScheduledProcedureStepStartTime": local.strftime("%H%M%S") if local else "",
                "ScheduledProcedureStepDescription": description,
                "ScheduledProcedureStepID": order.accession_number,
                "ScheduledProcedureStepStatus": "SCHEDULED", "ScheduledPerformingPhysicianName": "",
            },
        }


def _criteria(identifier: Dataset) -> tuple[dict[str, Match], dict[str, Match]]:
    """The matches asked for at the top level and inside the Scheduled Procedure Step item."""
    top = _matches(identifier)
    step: dict[str, Match] = {}
    if SPS in identifier:
        items = identifier[SPS].value
        if len(items) > 1:
            raise InvalidQuery("ScheduledProcedureStepSequence: a worklist query has at most one item")
        step = _matches(items[0]) if items else {}
    return top, step


def _matches(ds: Dataset) -> dict[str, Match]:
    found = {}
    for element in ds:
        keyword = element.keyword
        if keyword and keyword not in _CONTROL_KEYWORDS and element.VR != "SQ" and element.tag.group > 0x0002:
            match = match_for(keyword, text(element))
            if match.kind is not MatchKind.UNIVERSAL:
                found[keyword] = match
    return found


def _matching(criteria: dict[str, Match], values: dict[str, Any]) -> bool:
    # A key the worklist has no value for is not matched on: it is returned empty.
    return all(matches(match, values[key]) for key, match in criteria.items() if isinstance(values.get(key), str))


def _response(identifier: Dataset, entry: Entry) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"  # orders hold unicode
    _fill(ds, identifier, entry)
    return ds


def _fill(ds: Dataset, request: Dataset, values: Entry) -> None:
    """The requested elements of `request`, valued from `values`; a sequence asked for with
    no item (universal) comes back whole."""
    for element in request:
        keyword = element.keyword
        if keyword in _CONTROL_KEYWORDS or element.tag.group <= 0x0002:
            continue
        if element.VR != "SQ":
            vr = element.VR.split(" or ")[0]  # an ambiguous dictionary VR cannot be written explicitly
            value = values.get(keyword, "") if keyword else ""
            ds.add_new(element.tag, vr, _fit(vr, value) if isinstance(value, str) and value else None)
            continue
        nested = values.get(keyword) if keyword else None
        items = Sequence()
        if isinstance(nested, dict):
            item = Dataset()
            if element.value:
                _fill(item, element.value[0], nested)
            else:
                for key, value in nested.items():
                    vr = dictionary_VR(key)
                    item.add_new(key, vr, _fit(vr, value) if value else None)
            items.append(item)
        ds.add_new(element.tag, "SQ", items)


def _fit(vr: str, value: str) -> str:
    """Within the VR's length (a free-text reason may be longer than LO allows)."""
    limit = _MAX_LENGTH.get(vr)
    return value[:limit] if limit else value
