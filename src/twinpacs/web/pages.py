"""The pages people work in, served as HTML by the site itself (no CDN, no script needed):

    GET  /                         the worklist (web/page_worklist.py)
    GET  /studies/{uid}            a study with its referral (web/page_study.py)
    GET  /admin/...                sync, failover, notices, configuration, self-test, reconciliation
                                   (web/page_admin.py, web/page_notices.py)
    GET  /incidents/new, /admin/incidents...   report an incident; the register (web/page_incidents.py)
    GET  /static/...               the stylesheet: twinpacs.css holds the one priority colour scheme
The image viewer is /viewer/{uid} (web/viewer.py). Every page carries the downtime banner."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from . import page_admin, page_incidents, page_notices
from .page_render import STATIC_DIR
from .page_study import study_page
from .page_worklist import worklist

routes: list[BaseRoute] = [
    Route("/", worklist, methods=["GET"]),
    Route("/studies/{uid}", study_page, methods=["GET"]),
    Route("/admin", page_admin.admin_home, methods=["GET"]),
    Route("/admin/sync", page_admin.sync_page, methods=["GET"]),
    Route("/admin/failover", page_admin.failover_page, methods=["GET"]),
    Route("/admin/notices", page_notices.notices_page, methods=["GET"]),
    Route("/admin/notices", page_notices.post_notice, methods=["POST"]),
    Route("/admin/notices/{notice_id:int}/clear", page_notices.clear_notice, methods=["POST"]),
    Route("/admin/config", page_admin.config_page, methods=["GET"]),
    Route("/admin/config/{start_id:int}", page_admin.config_start_page, methods=["GET"]),
    Route("/admin/selftest", page_admin.selftest_page, methods=["GET"]),
    Route("/admin/reconciliation", page_admin.reconciliation_page, methods=["GET"]),
    Route("/incidents/new", page_incidents.new_incident_page, methods=["GET"]),
    Route("/incidents/new", page_incidents.report_incident, methods=["POST"]),
    Route("/admin/incidents", page_incidents.register_page, methods=["GET"]),
    Route("/admin/incidents/{incident_id:int}", page_incidents.incident_page, methods=["GET"]),
    Route("/admin/incidents/{incident_id:int}/analysis", page_incidents.save_analysis, methods=["POST"]),
    Route("/admin/incidents/drafts/{draft_id:int}/take-over", page_incidents.take_over_draft, methods=["POST"]),
    Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
]
