"""The incident register over HTTP (JSON). Field names and values: core.incident_register.

    GET   /api/incidents                    every incident (without versions), newest event first
    POST  /api/incidents                    {field: value, ..., "by"?}  or  {"from_draft": id, "by"?, field: value...}
    GET   /api/incidents/{id}               the incident with every version (who, when, what changed)
    PATCH /api/incidents/{id}               {field: value, ..., "by"?}: only the given fields change
    GET   /api/incidents/{id}/strategies    recommended strategies, each with the reasons it was selected
    GET   /api/taxonomy                     problem types, consequences, stages, factors, steps, strategies

Bad input is a 400 naming the field and the allowed values, and changes nothing.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..core.incident_register import IncidentRegister, take_over
from ..core.strategies import Classification, recommend
from ..errors import InvalidInput
from ..index.incident_register import drafts_for, register_for
from .context import json_object


def _register(request: Request) -> IncidentRegister:
    site = request.app.state.site
    return register_for(site.index.db, site.settings.site.data_dir)


def _by(body: dict[str, Any]) -> str:
    by = body.pop("by", "api")
    if not isinstance(by, str):
        raise InvalidInput("by must be text: the name of who makes the change")
    return by


async def list_incidents(request: Request) -> Response:
    found = await run_in_threadpool(_register(request).list)
    return JSONResponse({"incidents": [i.as_dict(with_versions=False) for i in found]})


async def create_incident(request: Request) -> Response:
    body = await json_object(request)
    by = _by(body)
    register = _register(request)
    draft_id = body.pop("from_draft", None)
    if draft_id is None:
        incident = await run_in_threadpool(register.add, body, by)
    elif isinstance(draft_id, int) and not isinstance(draft_id, bool):
        db = request.app.state.site.index.db
        incident = await run_in_threadpool(take_over, register, drafts_for(db), draft_id, by, body)
    else:
        raise InvalidInput("from_draft must be an incident draft id (an integer)")
    return JSONResponse(incident.as_dict(), status_code=201)


async def get_incident(request: Request) -> Response:
    found = await run_in_threadpool(_register(request).get, request.path_params["incident_id"])
    return JSONResponse(found.as_dict())


async def update_incident(request: Request) -> Response:
    body = await json_object(request)
    by = _by(body)
    found = await run_in_threadpool(_register(request).update, request.path_params["incident_id"], body, by)
    return JSONResponse(found.as_dict())


async def incident_strategies(request: Request) -> Response:
    register = _register(request)
    incident = await run_in_threadpool(register.get, request.path_params["incident_id"])
    basis = Classification.of(incident)
    return JSONResponse({"incident": incident.id, "version": incident.version,
                         "basis": {**vars(basis), "problem_types": list(basis.problem_types),
                                   "workflow_steps": list(basis.workflow_steps), "factors": list(basis.factors)},
                         "strategies": [r.as_dict() for r in recommend(basis, register.taxonomy)]})


async def taxonomy(request: Request) -> Response:
    return JSONResponse(_register(request).taxonomy.as_dict())


routes: list[BaseRoute] = [
    Route("/api/incidents", list_incidents, methods=["GET"]),
    Route("/api/incidents", create_incident, methods=["POST"]),
    Route("/api/incidents/{incident_id:int}", get_incident, methods=["GET"]),
    Route("/api/incidents/{incident_id:int}", update_incident, methods=["PATCH"]),
    Route("/api/incidents/{incident_id:int}/strategies", incident_strategies, methods=["GET"]),
    Route("/api/taxonomy", taxonomy, methods=["GET"]),
]
