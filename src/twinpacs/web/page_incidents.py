"""The incident register as pages, through the same register, rules and reports as /api/incidents:

    GET  /incidents/new                          report an incident (any signed-in clinician)
    POST /incidents/new                          -> the incident page (administrators) or a receipt
    GET  /admin/incidents                        the register, the archive's open drafts, the report charts
    GET  /admin/incidents/{id}                   one incident: report, analysis form with the suggested
                                                 classification and its evidence, strategies, versions
    POST /admin/incidents/{id}/analysis          save the analysis (a new version when anything changed)
    POST /admin/incidents/drafts/{id}/take-over  a draft the archive raised becomes an incident

Who made a change is the signed-in principal, never a form field. Suggestions are shown beside
the boxes, never ticked for the analyst. A rejected form shows the page again with the reason and
what was typed; nothing is stored."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..core.incident_register import Incident, IncidentRegister, take_over
from ..core.incident_reports import IncidentFacts, count_incidents
from ..core.strategies import recommend_for
from ..core.suggest import Suggestion, suggest
from ..errors import InvalidInput
from ..index.database import Database
from ..index.incident_register import drafts_for, register_for
from .access import may_open
from .page_render import page, render

REPORT_FIELDS = ("event_date", "event_time", "subject", "description", "product", "manufacturer",
                 "software_version", "serial_batch")
INVESTIGATION_FIELDS = ("cause_investigation", "measures", "follow_up", "risk_of_harm", "underlying_cause",
                        "patient_outcome", "staff_outcome")
LINE_FIELDS = ("mitigating_factors", "actions")  # one entry per line of the text area
CHARTS = ("problem_types", "consequences", "workflow_steps", "months")


def _register(request: Request) -> IncidentRegister:
    site = request.app.state.site
    return register_for(site.index.db, site.settings.site.data_dir)


def _who(request: Request) -> str:
    return str(request.state.principal.name)


async def _text_form(request: Request, names: tuple[str, ...]) -> tuple[FormData, dict[str, str]]:
    form = await request.form()
    return form, {n: str(form.get(n, "")).strip() for n in names}


# --- reporting ---------------------------------------------------------------------------------

async def _new_form(request: Request, form: dict[str, str], error: str = "", status_code: int = 200) -> Response:
    recorded = request.query_params.get("recorded", "")
    return await render(request, "incident_new.html", {
        "form": form, "error": error, "recorded": recorded if recorded.isdigit() else ""}, status_code)


@page
async def new_incident_page(request: Request) -> Response:
    return await _new_form(request, {n: "" for n in REPORT_FIELDS})


@page
async def report_incident(request: Request) -> Response:
    _, values = await _text_form(request, REPORT_FIELDS)
    try:
        incident = await run_in_threadpool(_register(request).add, values, _who(request))
    except InvalidInput as exc:
        return await _new_form(request, values, exc.message, 400)
    where = f"/admin/incidents/{incident.id}"
    if not may_open(request.state.principal.role, "/admin/incidents"):
        where = f"/incidents/new?recorded={incident.id}"  # a clinician reports; the register is kept by others
    return RedirectResponse(where, status_code=303)


# --- the register ------------------------------------------------------------------------------

def _overview(register: IncidentRegister, db: Database) -> dict[str, Any]:
    incidents = register.list()
    report = count_incidents((IncidentFacts.of(i) for i in incidents), register.taxonomy)
    return {"incidents": incidents, "tax": register.taxonomy, "charts": CHARTS,
            "drafts": [d for d in drafts_for(db).drafts() if d.state == "open"],
            "counted": {c: sum(report.counts(c).values()) for c in CHARTS}}


@page
async def register_page(request: Request) -> Response:
    found = await run_in_threadpool(_overview, _register(request), request.app.state.site.index.db)
    return await render(request, "incidents.html", found)


@page
async def take_over_draft(request: Request) -> Response:
    site = request.app.state.site
    incident = await run_in_threadpool(take_over, _register(request), drafts_for(site.index.db),
                                       request.path_params["draft_id"], _who(request))
    return RedirectResponse(f"/admin/incidents/{incident.id}", status_code=303)


# --- one incident and its analysis -------------------------------------------------------------

def _by_id(suggestions: tuple[Suggestion, ...]) -> dict[str, Suggestion]:
    return {str(s.id): s for s in suggestions}


def _detail(register: IncidentRegister, incident: Incident) -> dict[str, Any]:
    f = incident.fields
    text = "\n".join(f[n] for n in ("subject", "description", "cause_investigation", "measures") if f[n])
    found = suggest(text)
    return {"incident": incident, "f": f, "tax": register.taxonomy,
            "strategies": recommend_for(incident, register.taxonomy),
            "suggested": {"problem_types": _by_id(found.problem_types), "workflow_steps": _by_id(found.workflow_steps),
                          "consequences": _by_id(found.consequences[:1]),
                          "consequence_alternatives": _by_id(found.consequences[1:])},
            "factor_ids": [c["id"] for c in f["contributing_factors"]]}


async def _show(request: Request, error: str = "", status_code: int = 200,
                typed: dict[str, Any] | None = None) -> Response:
    register = _register(request)
    incident = await run_in_threadpool(register.get, request.path_params["incident_id"])
    found = await run_in_threadpool(_detail, register, incident)
    if typed:  # a rejected form: the texts as typed (the boxes show what is stored)
        found["f"] = {**found["f"], **typed}
    stage = request.query_params.get("stage", "")
    found["stage"] = stage if stage in register.taxonomy.stages else incident.problem_types_for_rules()[0]
    return await render(request, "incident.html", {**found, "error": error}, status_code)


@page
async def incident_page(request: Request) -> Response:
    return await _show(request)


def _analysis(form: FormData, texts: dict[str, str], notes: dict[str, str]) -> dict[str, Any]:
    """The register's fields from the analysis form. Only the chosen report stage's problem
    types are replaced; a kept contributing factor keeps its note."""
    return {
        **{n: texts[n] for n in INVESTIGATION_FIELDS},
        **{n: texts[n].splitlines() for n in LINE_FIELDS},
        "problem_types": {texts["stage"]: form.getlist("problem_type")},
        "consequence": texts["consequence"],
        "workflow_steps": form.getlist("workflow_step"),
        "contributing_factors": [{"id": i, "note": notes.get(i, "")} for i in form.getlist("factor")],
    }


@page
async def save_analysis(request: Request) -> Response:
    form, texts = await _text_form(request, (*INVESTIGATION_FIELDS, *LINE_FIELDS, "stage", "consequence"))
    register = _register(request)
    incident_id = request.path_params["incident_id"]
    current = await run_in_threadpool(register.get, incident_id)
    notes = {c["id"]: c["note"] for c in current.fields["contributing_factors"]}
    values = _analysis(form, texts, notes)
    try:
        await run_in_threadpool(register.update, incident_id, values, _who(request))
    except InvalidInput as exc:
        typed = {n: values[n] for n in (*INVESTIGATION_FIELDS, *LINE_FIELDS)}
        return await _show(request, exc.message, 400, typed)
    return RedirectResponse(f"/admin/incidents/{incident_id}?stage={texts['stage']}", status_code=303)
