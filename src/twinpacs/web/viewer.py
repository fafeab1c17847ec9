"""The image viewer: GET /viewer/{StudyInstanceUID}[?prior=UID][&series=UID] serves the page, and
/viewer-assets/ the Cornerstone3D bundle that scripts/setup.sh builds from frontend/ into
static/viewer/ (not committed). The page reads everything through this site's DICOMweb.

Display protocol: the study on the left (the series named by ?series=, else its first); on the
right the prior named by ?prior=, else the same patient's most recent other study held here
that shares a modality with it and is not dated after it (the bundle asks QIDO-RS), else a
message saying there is none. The prior opens on its series matching the current one (same
description, else number, else modality); both as stored, in the same orientation."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from html import escape
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, NoMatchFound, Route
from starlette.staticfiles import StaticFiles

from .banner import active_notices, render_banner

BUILD_DIR = Path(__file__).parent / "static" / "viewer"
MANIFEST = BUILD_DIR / ".vite" / "manifest.json"
ENTRY = "src/main.ts"
ASSETS = "/viewer-assets/"
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")  # PS3.5 9.1: digits and dots, at most 64 characters
# The pages module's names for the study page (with the referral) and the worklist, when present.
STUDY_PAGE, WORKLIST_PAGE = "study_page", "worklist"



class BundleMissing(Exception):
    """The viewer bundle is not built (setup builds it with Node.js and npm)."""


def bundle_entry() -> tuple[str, tuple[str, ...]]:
    """(script URL, stylesheet URLs) of the built entry, from Vite's manifest; read again when
    the bundle is rebuilt."""
    try:
        mtime = MANIFEST.stat().st_mtime_ns
    except FileNotFoundError:
        raise BundleMissing(f"the viewer bundle is not built ({MANIFEST} is missing)") from None
    return _entry(MANIFEST, mtime)


@lru_cache(maxsize=4)
def _entry(manifest: Path, mtime: int) -> tuple[str, tuple[str, ...]]:
    entry = json.loads(manifest.read_text())[ENTRY]
    return ASSETS + entry["file"], tuple(ASSETS + css for css in entry.get("css", []))


def _link(request: Request, name: str, **params: str) -> str | None:
    try:
        return str(request.url_for(name, **params).path)
    except NoMatchFound:
        return None


def _page(title: str, banner: str, body: str, head: str = "") -> str:
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<link rel=\"icon\" href=\"data:,\">"
            f"<title>{escape(title)}</title>{head}</head><body class=\"twinpacs-viewer\">{banner}{body}</body></html>")


def _message_page(title: str, message: str, banner: str, status_code: int) -> HTMLResponse:
    body = (f"<main style=\"padding:1em;font-family:sans-serif\"><h1>{escape(title)}</h1>"
            f"<p role=\"alert\">{escape(message)}</p><p><a href=\"/\">Back to the start page</a></p></main>")
    return HTMLResponse(_page(title, banner, body), status_code=status_code)


async def viewer_page(request: Request) -> Response:
    study = request.path_params["study"]
    prior = request.query_params.get("prior", "")
    series = request.query_params.get("series", "")
    banner = render_banner(await active_notices(request.app.state.site))
    for label, uid in (("study", study), ("prior", prior), ("series", series)):
        if uid and not (_UID.match(uid) and len(uid) <= 64):
            return _message_page("Viewer: not a UID", f"The {label} UID {uid!r} is not a DICOM UID "
                                 "(digits and dots, at most 64 characters).", banner, 400)
    try:
        script, styles = bundle_entry()
    except BundleMissing as exc:
        return _message_page("Viewer not installed", f"The image viewer cannot be shown: {exc}. Run "
                             "scripts/setup.sh on this server (it needs Node.js 20 or later) to build it.",
                             banner, 503)
    links = [(href, text) for href, text in ((_link(request, WORKLIST_PAGE), "Worklist"),
                                             (_link(request, STUDY_PAGE, uid=study), "Study and referral"))
             if href]
    nav = "".join(f'<a href="{escape(href)}">{escape(text)}</a>' for href, text in links)
    head = "".join(f'<link rel="stylesheet" href="{escape(href)}">' for href in styles)
    # The studies' metadata is asked for at once, while the bundle loads; it reads the UIDs from
    # the data attributes, so no value from the request is ever written into script.
    early = ("<script>(function(){var v=document.getElementById('viewer'),m=window.twinpacsMetadata={};"
             "[v.dataset.study,v.dataset.prior].forEach(function(u){if(u)m[u]=fetch(v.dataset.dicomweb+"
             "'/studies/'+encodeURIComponent(u)+'/metadata',{headers:{Accept:'application/dicom+json, "
             "application/json'}});});})();</script>")
    failed = ("document.getElementById('viewer-status').textContent='The viewer program could not be "
              "loaded from this site. Reload the page; if it persists, the viewer bundle is damaged.'")
    body = (
        (f'<nav class="viewer-nav" aria-label="Pages">{nav}</nav>' if nav else "")
        + '<div id="viewer-problem" class="viewer-problem" role="alert" hidden></div>'
        f'<div id="viewer" data-study="{escape(study)}" data-prior="{escape(prior)}" data-series="{escape(series)}" '
        'data-dicomweb="/dicom-web">'
        '<p id="viewer-status" role="status">Loading the viewer…</p></div>'
        + early +
        '<noscript><p>The image viewer needs JavaScript.</p></noscript>'
        f'<script type="module" src="{escape(script)}" onerror="{escape(failed)}"></script>'
    )
    return HTMLResponse(_page("twinpacs viewer", banner, body, head))


routes: list[BaseRoute] = [
    Route("/viewer/{study}", viewer_page, name="viewer"),
    # check_dir=False: the site starts without a built bundle; the page then says so.
    Mount("/viewer-assets", app=StaticFiles(directory=BUILD_DIR, check_dir=False), name="viewer_assets"),
]
