"""Suggested classification and the register's reports over HTTP.

    POST /api/incidents/suggest              {"text": ...}: problem_types, workflow_steps, consequence
                                             (+ consequence_alternatives), each with confidence and evidence
    GET  /api/incidents/report               counts by problem type, consequence, workflow step and month
    GET  /api/incidents/report.csv           the same as CSV (dimension, key, label, count)
    GET  /api/incidents/report/{chart}.png   chart: problem_types | consequences | workflow_steps | months
    GET  /api/incidents/report/{chart}.svg
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..core.incident_reports import IncidentFacts, IncidentReport, count_incidents
from ..core.suggest import suggest
from ..errors import InvalidInput
from ..index.incident_register import register_for
from .context import json_object

_MEDIA = {"png": "image/png", "svg": "image/svg+xml"}


def _report(request: Request) -> IncidentReport:
    site = request.app.state.site
    register = register_for(site.index.db, site.settings.site.data_dir)
    return count_incidents((IncidentFacts.of(i) for i in register.list()), register.taxonomy)


async def suggest_classification(request: Request) -> Response:
    body = await json_object(request)
    text = body.get("text")
    if not isinstance(text, str):
        raise InvalidInput('text is required: the report\'s text as a string, {"text": "..."}')
    result = await run_in_threadpool(suggest, text)
    return JSONResponse(result.as_dict())


async def report(request: Request) -> Response:
    found = await run_in_threadpool(_report, request)
    return JSONResponse(found.as_dict())


async def report_csv(request: Request) -> Response:
    found = await run_in_threadpool(_report, request)
    return Response(found.to_csv(), media_type="text/csv; charset=utf-8")


async def report_chart(request: Request) -> Response:
    from ..incident_charts import render_chart  # matplotlib: loaded only when drawing

    fmt = request.path_params["format"]
    found = await run_in_threadpool(_report, request)
    image = await run_in_threadpool(render_chart, found, request.path_params["chart"], fmt)
    return Response(image, media_type=_MEDIA[fmt])


routes: list[BaseRoute] = [
    Route("/api/incidents/suggest", suggest_classification, methods=["POST"]),
    Route("/api/incidents/report", report, methods=["GET"]),
    Route("/api/incidents/report.csv", report_csv, methods=["GET"]),
    Route("/api/incidents/report/{chart}.{format:str}", report_chart, methods=["GET"]),
]
