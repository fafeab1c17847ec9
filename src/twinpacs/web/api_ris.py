"""The RIS link over HTTP (JSON): the referral beside the images, orders, the reconciliation
list and its corrections, patient merges.

    GET  /api/studies/{uid}/referral       the study's order; 404 with the reason when it has none
    GET  /api/orders[?status=&modality=&station_ae=&patient_id=&accession_number=&date=&limit=]
                                           date: YYYYMMDD or YYYYMMDD-YYYYMMDD, the hospital's local days
    GET  /api/reconciliation[?limit=]      {"totals": {kind: n}, "items": [...]}
    POST /api/reconciliation/apply         {"study", "accession_number" | "placer_number", "reason", "actor"?}
    GET  /api/merges[?limit=]              A40 merges, newest first
    POST /api/merges/{id}/reverse          {"reason", "actor"?}
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..app import Site
from ..core.reconcile import Reconciliation, local_day_bounds, local_zone
from ..core.ris import Order, OrderStatus
from ..errors import InvalidInput
from ..index.reconcile import SqlReconcileStore
from .context import json_object
from .trail_middleware import record_done

_DEFAULT_LIMIT = 200


def reconciliation(site: Site) -> Reconciliation:
    """Cheap to build (no connections of its own): built per request."""
    ris = site.ris

    def order_by(by: str, key: str) -> Order | None:
        return ris.order_for_accession(key) if by == "accession" else ris.index.order_by_placer(key)
    return Reconciliation(SqlReconcileStore(site.index.db), order_by, ris.procedure_map, ris.clock)


def _site(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


def _limit(request: Request, default: int = _DEFAULT_LIMIT) -> int:
    value = request.query_params.get("limit")
    if value is None:
        return default
    if not value.isdigit() or int(value) < 1:
        raise InvalidInput(f"limit must be a positive integer, not {value!r}")
    return int(value)


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key, "")
    if not isinstance(value, str):
        raise InvalidInput(f"{key} must be a string")
    return value.strip()


async def referral(request: Request) -> Response:
    found = await run_in_threadpool(reconciliation(_site(request)).referral, request.path_params["study"])
    return JSONResponse(found)


def _order_filters(request: Request, site: Site) -> dict[str, Any]:
    q = request.query_params
    filters: dict[str, Any] = {key: q[key] for key in ("modality", "station_ae", "patient_id", "accession_number")
                               if q.get(key)}
    status = q.get("status")
    if status:
        if status not in {s.value for s in OrderStatus}:
            raise InvalidInput(f"status must be one of {', '.join(s.value for s in OrderStatus)}, not {status!r}")
        filters["status"] = status
    date = q.get("date", "")
    if date:
        first, dash, last = date.partition("-")
        bounds = local_day_bounds(first, last if dash else first, local_zone(site.settings.hl7.timezone))
        filters.update({k: v for k, v in zip(("scheduled_from", "scheduled_to"), bounds) if v is not None})
    filters["limit"] = _limit(request, 1000)
    return filters


async def orders(request: Request) -> Response:
    site = _site(request)
    found = await run_in_threadpool(lambda: site.ris.orders(**_order_filters(request, site)))
    return JSONResponse({"orders": [o.as_dict() for o in found]})


async def reconciliation_list(request: Request) -> Response:
    found = await run_in_threadpool(reconciliation(_site(request)).items, _limit(request))
    return JSONResponse(found)


async def reconciliation_apply(request: Request) -> Response:
    body = await json_object(request)
    done = await run_in_threadpool(lambda: reconciliation(_site(request)).apply(
        _text(body, "study"), _text(body, "reason"), _text(body, "actor") or "api",
        accession_number=_text(body, "accession_number"), placer_number=_text(body, "placer_number")))
    patient = done["changes"].get("PatientID", {}).get("after", "")
    await run_in_threadpool(record_done, request, "correction", patient, done["study"],
                            f"linked to order {done['order']} (accession {done['accession_number']}): "
                            f"{', '.join(sorted(done['changes'])) or 'nothing changed'}")
    return JSONResponse(done)


async def merges(request: Request) -> Response:
    found = await run_in_threadpool(reconciliation(_site(request)).merges, _limit(request))
    return JSONResponse({"merges": found})


async def reverse_merge(request: Request) -> Response:
    body = await json_object(request)
    record = await run_in_threadpool(reconciliation(_site(request)).unmerge, request.path_params["merge_id"],
                                     _text(body, "reason"), _text(body, "actor") or "api")
    await run_in_threadpool(record_done, request, "merge", record.prior_id, "",
                            f"unmerge {record.id}: {record.prior_id} back from {record.surviving.patient_id}, "
                            f"{len(record.studies)} stud(ies)")
    return JSONResponse({"merge": record.id, "reversed": True, "studies": record.studies, "orders": record.orders,
                         "surviving": record.surviving.patient_id, "prior": record.prior_id})


routes: list[BaseRoute] = [
    Route("/api/studies/{study}/referral", referral, methods=["GET"]),
    Route("/api/orders", orders, methods=["GET"]),
    Route("/api/reconciliation", reconciliation_list, methods=["GET"]),
    Route("/api/reconciliation/apply", reconciliation_apply, methods=["POST"]),
    Route("/api/merges", merges, methods=["GET"]),
    Route("/api/merges/{merge_id:int}/reverse", reverse_merge, methods=["POST"]),
]
