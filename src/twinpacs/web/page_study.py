"""The study page (GET /studies/{uid}): the referral panel (the code of GET
/api/studies/{uid}/referral) beside the series with a thumbnail each (WADO-RS /rendered of the
series' middle image), where the images are, the prefetch state of the order's priors, the
link to the reconciliation list when the study has no order or another patient than its order,
and the link that opens the viewer with the most recent relevant prior held here beside it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..app import Site
from ..core.model import Level
from ..core.query import build_query
from ..errors import NotFound
from .api_ris import reconciliation
from .page_data import copies, find_studies, held_instances, patient_studies, prefetch_of, relevant_prior
from .page_render import local_time, page, render
from .trail_middleware import note

THUMBNAIL = "160,160"  # viewport of a series thumbnail, pixels
_SERIES_KEYS = ("SeriesInstanceUID", "SeriesNumber", "Modality", "SeriesDescription", "BodyPartExamined")
_IMAGE_KEYS = ("SeriesInstanceUID", "SOPInstanceUID", "InstanceNumber", "Rows", "NumberOfFrames")


@dataclass(frozen=True)
class Series:
    uid: str
    number: str
    modality: str
    description: str
    body_part: str
    instances: int
    frames: int  # of every instance together
    thumbnail: str  # a /rendered URL; "" when the series holds no image (a report, say)


def _number(text: str, default: int = 0) -> int:
    try:
        return int(float(text))
    except ValueError:
        return default


def viewer_url(study_uid: str, prior_uid: str = "") -> str:
    """The viewer's address (web/viewer.py): /viewer/{StudyInstanceUID}[?prior=UID]."""
    url = f"/viewer/{quote(study_uid, safe='')}"
    return f"{url}?prior={quote(prior_uid, safe='')}" if prior_uid else url


def series_of(site: Site, study_uid: str) -> list[Series]:
    """The study's series in SeriesNumber order, each with its middle image's thumbnail."""
    find = site.archive.find
    series = find(build_query(Level.SERIES, {"StudyInstanceUID": study_uid, **{k: "" for k in _SERIES_KEYS}},
                              _SERIES_KEYS))
    images = find(build_query(Level.IMAGE, {"StudyInstanceUID": study_uid, **{k: "" for k in _IMAGE_KEYS}},
                              _IMAGE_KEYS))
    by_series: dict[str, list[dict[str, str]]] = {}
    for image in images:
        by_series.setdefault(image["SeriesInstanceUID"], []).append(image)
    found = []
    for s in sorted(series, key=lambda s: (_number(s["SeriesNumber"], 10**9), s["SeriesInstanceUID"])):
        members = sorted(by_series.get(s["SeriesInstanceUID"], []),
                         key=lambda i: (_number(i["InstanceNumber"]), i["SOPInstanceUID"]))
        pictures = [i for i in members if i["Rows"]]
        frames = sum(max(1, _number(i["NumberOfFrames"], 1)) for i in pictures)
        found.append(Series(s["SeriesInstanceUID"], s["SeriesNumber"], s["Modality"], s["SeriesDescription"],
                            s["BodyPartExamined"], len(members), frames,
                            _thumbnail(study_uid, pictures[len(pictures) // 2]) if pictures else ""))
    return found


def _thumbnail(study_uid: str, image: dict[str, str]) -> str:
    study, series, sop = (quote(p, safe="") for p in (study_uid, image["SeriesInstanceUID"], image["SOPInstanceUID"]))
    url = f"/dicom-web/studies/{study}/series/{series}/instances/{sop}"
    frames = _number(image["NumberOfFrames"], 1)
    middle = f"/frames/{(frames + 1) // 2}" if frames > 1 else ""  # a multi-frame image: its middle frame
    return f"{url}{middle}/rendered?viewport={THUMBNAIL}"


def gather(site: Site, uid: str) -> dict[str, Any]:
    """Blocking: everything the study page shows; NotFound when the study is not held here."""
    found = find_studies(site, {"StudyInstanceUID": uid})
    if not found:
        raise NotFound(f"no study {uid} is held at site {site.name}")
    study = found[0]
    try:
        referral, no_referral = reconciliation(site).referral(uid), ""
    except NotFound as exc:  # the reason: no accession, or no order has it
        referral, no_referral = None, exc.message
    order = site.ris.order_for_accession(study.get("AccessionNumber", ""))
    prior = relevant_prior(site, study, order, patient_studies(site, study.get("PatientID", ""), {}))
    return {
        "study": study, "referral": referral, "no_referral": no_referral,
        "reconcile": referral is None or not referral["patient_matches"],
        "series": series_of(site, uid), "copies": copies(site, held_instances(site, [uid])).get(uid),
        "prefetch": prefetch_of(site, order.accession_number) if order else None,
        "scheduled": local_time(site, order.scheduled_at) if order else "",
        "prior": prior, "viewer": viewer_url(uid, prior["StudyInstanceUID"] if prior else ""),
    }


@page
async def study_page(request: Request) -> Response:
    site: Site = request.app.state.site
    found = await run_in_threadpool(gather, site, request.path_params["uid"])
    note(request, patient_id=found["study"].get("PatientID", ""))
    return await render(request, "study.html", {**found, "refresh_s": 60})
