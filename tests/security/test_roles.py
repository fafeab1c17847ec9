"""Each role's allowed and refused requests, for pages, the admin API and DICOMweb (QIDO-RS,
WADO-RS, STOW-RS), with bearer tokens from the configuration."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from twinpacs.app import build_site
from twinpacs.config import load_settings
from twinpacs.synthetic import StudySpec, encode, make_study
from tests.served import ServedApp
from tests.web.conftest import stow_body

from .conftest import OPENER, TOKENS, bearer, secure_settings

SPEC = StudySpec(patient_id="SEC01", series=1, instances_per_series=2, rows=8, columns=8, seed=11)


@pytest.fixture
def study_uid(served: ServedApp) -> str:
    objects = [encode(ds) for ds in make_study(SPEC)]
    body, headers = stow_body(objects)
    answer = httpx.post(f"{served.url}/dicom-web/studies", content=body, headers={**headers, **bearer("service")})
    assert answer.status_code == 200, answer.text
    return str(make_study(SPEC)[0].StudyInstanceUID)


ALLOWED = {
    "radiologist": {"page", "qido", "wado", "incident_report"},
    "radiographer": {"page", "qido", "wado", "stow", "reconcile", "incident_report"},
    "administrator": {"page", "admin_page", "admin_api", "qido", "wado", "stow", "reconcile", "peer_api",
                      "incident_report"},
    "service": {"qido", "wado", "stow", "peer_api"},
}


def _requests(url: str, study: str) -> dict[str, tuple[str, str, dict[str, object]]]:
    body, headers = stow_body([encode(ds) for ds in make_study(SPEC)])
    return {
        "page": ("GET", "/", {}),
        "admin_page": ("GET", "/admin/config", {}),
        "admin_api": ("GET", "/api/config", {}),
        "qido": ("GET", "/dicom-web/studies", {"params": {"PatientID": "SEC01"}}),
        "wado": ("GET", f"/dicom-web/studies/{study}/metadata", {}),
        "stow": ("POST", "/dicom-web/studies", {"content": body, "headers": headers}),
        "reconcile": ("GET", "/api/reconciliation", {}),
        "peer_api": ("POST", "/api/replication/hashes", {"json": {"uids": ["1.2.3"]}}),
        "incident_report": ("GET", "/api/taxonomy", {}),
    }


@pytest.mark.parametrize("role", sorted(TOKENS))
def test_each_role_may_do_what_its_work_needs_and_nothing_else(served: ServedApp, study_uid: str, role: str) -> None:
    with httpx.Client(base_url=served.url, follow_redirects=False) as client:
        for what, (method, path, kwargs) in _requests(served.url, study_uid).items():
            headers = {**kwargs.pop("headers", {}), **bearer(role)}  # type: ignore[dict-item]
            answer = client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
            if what in ALLOWED[role]:
                assert answer.status_code in (200, 204), (role, what, answer.status_code, answer.text[:200])
            else:
                assert answer.status_code == 403, (role, what, answer.status_code)
                if path.startswith(("/api/", "/dicom-web")):
                    assert role in answer.json()["error"]


def test_anonymous_is_refused_patient_data_and_a_wrong_token_never_becomes_anonymous(
        served: ServedApp, study_uid: str) -> None:
    with httpx.Client(base_url=served.url, follow_redirects=False) as client:
        assert client.get("/dicom-web/studies").status_code == 401
        assert client.get(f"/dicom-web/studies/{study_uid}").status_code == 401
        body, headers = stow_body([encode(make_study(SPEC)[0])])
        assert client.post("/dicom-web/studies", content=body, headers=headers).status_code == 401
        page = client.get(f"/studies/{study_uid}")
        assert page.status_code == 303 and page.headers["location"] == f"/login?next=%2Fstudies%2F{study_uid}"
        for wrong in ("Bearer " + "y" * 43, "Basic YWRtaW46YWRtaW4=", "Bearer"):
            answer = client.get("/dicom-web/studies", headers={"Authorization": wrong})
            assert answer.status_code == 401 and "token" in answer.json()["error"]


def test_an_opened_door_admits_anonymous_in_that_role_but_still_refuses_a_wrong_token(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OPENER, "radiologist")
    site = build_site(load_settings(overrides=secure_settings(tmp_path)))
    http = ServedApp(site)
    try:
        assert httpx.get(f"{http.url}/dicom-web/studies").status_code in (200, 204)
        assert httpx.get(f"{http.url}/api/config").status_code == 403
        page = httpx.get(f"{http.url}/")
        assert page.status_code == 200 and 'id="open-door"' in page.text
        assert httpx.get(f"{http.url}/dicom-web/studies", headers={"Authorization": "Bearer nope"}).status_code == 401
    finally:
        http.stop()
        site.close()
