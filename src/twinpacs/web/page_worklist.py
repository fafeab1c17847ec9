"""The worklist (GET /, the home page): scheduled and performed exams in one list, from the
RIS orders (the queries of /api/orders) and the studies stored here (with or without an order),
filterable by day, modality, status and priority with a plain GET form.

A row is an order, a stored study, or both when the study's Accession Number is the order's.
Its status: scheduled (an order, no images yet), in-progress (an order with images here),
completed and cancelled (as the RIS says; a cancelled order without images is listed only when
the status filter asks for it), no-order (images no order names: see the reconciliation list). STAT rows
come first, then ASAP, then routine; newest first in each."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from ..app import Site
from ..core.reconcile import local_day_bounds
from ..core.ris import Order, OrderStatus, Priority
from ..errors import InvalidInput
from .page_data import (Copies, Prefetch, copies, find_studies, held_instances, patient_studies, prefetch_of,
                        relevant_prior)
from .page_render import local_time, page, render, zone

ROWS_SHOWN = 200  # a longer list is cut, saying how many rows matched
FETCH_LIMIT = 500  # orders and studies read per query; more: the page says the list may be incomplete
STATUSES = ("scheduled", "in-progress", "completed", "cancelled", "no-order")
PRIORITIES = tuple(p.value for p in Priority)
_MODALITY = re.compile(r"^[A-Z0-9]{1,16}$")


@dataclass(frozen=True)
class Filters:
    date: str = ""  # YYYYMMDD, the hospital's local day; "" any
    modality: str = ""
    status: str = ""
    priority: str = ""

    @classmethod
    def parse(cls, params: QueryParams) -> Filters:
        """The form's values; a value the worklist cannot filter by is a 400 that names it."""
        date = params.get("date", "").strip().replace("-", "")
        if date:
            try:
                datetime.strptime(date, "%Y%m%d")
            except ValueError:
                raise InvalidInput(f"date: {params['date']!r} is not a date (YYYY-MM-DD)") from None
        modality = params.get("modality", "").strip().upper()
        if modality and not _MODALITY.match(modality):
            raise InvalidInput(f"modality: {params['modality']!r} is not a modality code such as CT or MR")
        status, priority = params.get("status", ""), params.get("priority", "")
        if status and status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        if priority and priority not in PRIORITIES:
            raise InvalidInput(f"priority must be one of {', '.join(PRIORITIES)}, not {priority!r}")
        return cls(date, modality, status, priority)

    @property
    def form_date(self) -> str:
        """As an <input type=date> wants it."""
        return f"{self.date[:4]}-{self.date[4:6]}-{self.date[6:]}" if self.date else ""


@dataclass
class Row:
    order: Order | None
    study: dict[str, str] | None
    copies: Copies | None = None
    prefetch: Prefetch | None = None
    prior: dict[str, str] | None = None
    scheduled: str = ""  # the order's time, local

    @property
    def status(self) -> str:
        if self.order is None:
            return "no-order"
        if self.order.status is not OrderStatus.SCHEDULED:
            return str(self.order.status.value)
        return "in-progress" if self.study else "scheduled"

    @property
    def priority(self) -> str:
        return self.order.priority.value if self.order else ""

    @property
    def modalities(self) -> list[str]:
        found = [m for m in (self.study or {}).get("ModalitiesInStudy", "").split("\\") if m]
        if self.order and self.order.modality and self.order.modality not in found:
            found.insert(0, self.order.modality)
        return found

    @property
    def patient_name(self) -> str:
        return self.order.patient.name if self.order else (self.study or {}).get("PatientName", "")

    @property
    def patient_id(self) -> str:
        return self.order.patient.patient_id if self.order else (self.study or {}).get("PatientID", "")

    @property
    def accession(self) -> str:
        return self.order.accession_number if self.order else (self.study or {}).get("AccessionNumber", "")

    @property
    def procedure(self) -> str:
        if self.order:
            o = self.order
            return (o.mapped_procedure.meaning if o.mapped_procedure else "") or o.procedure.meaning \
                or o.procedure.value
        return (self.study or {}).get("StudyDescription", "")

    def sort_key(self) -> tuple[int, str]:
        when = self.scheduled.replace("-", "").replace(" ", "").replace(":", "")
        if self.study:
            when = max(when, self.study.get("StudyDate", "") + self.study.get("StudyTime", "")[:4])
        return (Priority(self.priority).rank if self.priority else 0, when)

    def matches(self, f: Filters) -> bool:
        # A cancelled order is left out unless asked for, but never images held here.
        wanted = self.status == f.status if f.status else self.status != "cancelled" or self.study is not None
        return wanted and (not f.priority or self.priority == f.priority) \
            and (not f.modality or f.modality in self.modalities)


def gather(site: Site, f: Filters) -> dict[str, Any]:
    """Blocking: the rows matching the filters, the first ROWS_SHOWN enriched with where their
    images are, their priors' prefetch state and the prior to open beside them."""
    order_filters: dict[str, Any] = {"limit": FETCH_LIMIT}
    criteria: dict[str, str] = {}
    if f.modality:
        order_filters["modality"] = criteria["ModalitiesInStudy"] = f.modality
    if f.date:
        first, last = local_day_bounds(f.date, f.date, zone(site))
        order_filters.update(scheduled_from=first, scheduled_to=last)
        criteria["StudyDate"] = f.date
    orders = site.ris.orders(**order_filters)
    studies = find_studies(site, criteria, FETCH_LIMIT)
    by_accession = {o.accession_number: o for o in orders}
    rows, linked = [], set()
    for study in studies:
        accession = study.get("AccessionNumber", "")
        order = by_accession.get(accession) or site.ris.order_for_accession(accession)
        rows.append(Row(order, study))
        linked.add(accession)
    for order in orders:  # an order whose images are dated another day (or are not here)
        if order.accession_number not in linked:
            found = find_studies(site, {"AccessionNumber": order.accession_number})
            rows += [Row(order, s) for s in found] or [Row(order, None)]
    for row in rows:
        row.scheduled = local_time(site, row.order.scheduled_at) if row.order else ""
    matching = sorted((r for r in rows if r.matches(f)), key=Row.sort_key, reverse=True)
    shown = matching[:ROWS_SHOWN]
    _enrich(site, shown)
    return {"rows": shown, "matched": len(matching),
            "incomplete": len(orders) >= FETCH_LIMIT or len(studies) >= FETCH_LIMIT}


def _enrich(site: Site, rows: list[Row]) -> None:
    with_images = [r for r in rows if r.study]
    where = copies(site, held_instances(site, (r.study["StudyInstanceUID"] for r in with_images if r.study)))
    cache: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        if row.order:
            row.prefetch = prefetch_of(site, row.order.accession_number)
        if row.study:
            row.copies = where.get(row.study["StudyInstanceUID"])
            row.prior = relevant_prior(site, row.study, row.order,
                                       patient_studies(site, row.study.get("PatientID", ""), cache))


@page
async def worklist(request: Request) -> Response:
    site: Site = request.app.state.site
    filters = Filters.parse(request.query_params)
    found = await run_in_threadpool(gather, site, filters)
    today = datetime.now(zone(site)).strftime("%Y-%m-%d")
    return await render(request, "worklist.html", {
        **found, "filters": filters, "statuses": STATUSES, "priorities": PRIORITIES, "today": today,
        "rows_shown": ROWS_SHOWN, "fetch_limit": FETCH_LIMIT, "refresh_s": 60,
        "peers": [p.name for p in site.settings.peers]})
