"""HTTP accesses to patient data, each leaving exactly one entry (who, from where, what, on
which patient and study, with which outcome); refusals of the authentication layer included."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pydicom
import pytest

from twinpacs.app import Site
from twinpacs.core.principal import Principal
from twinpacs.core.ris import Patient
from twinpacs.selftest import marked_study
from twinpacs.synthetic import encode, make_study
from twinpacs.web import create_app
from tests.ris.conftest import order
from tests.trail.conftest import SPEC, entries, make_site

pytestmark = pytest.mark.anyio

READER_TOKEN = "r" * 40
ADMIN_TOKEN = "a" * 40
TOKENS = {"api_tokens": [{"name": "reader", "token": READER_TOKEN, "role": "radiologist"},
                         {"name": "boss", "token": ADMIN_TOKEN, "role": "administrator"}]}
READER = Principal("reader", "radiologist", "token", "127.0.0.1")
BOSS = Principal("boss", "administrator", "token", "127.0.0.1")


def as_(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def secured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Site]:
    """A site with the secure default (no anonymous access) and two configuration tokens."""
    monkeypatch.delenv("TWINPACS_SECURITY__ANONYMOUS_ROLE", raising=False)
    built = make_site(tmp_path / "secured", security=TOKENS)
    yield built  # type: ignore[misc]
    built.close()


@pytest.fixture
async def web(secured: Site) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(secured))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def stored(secured: Site) -> str:
    datasets = make_study(SPEC)
    for ds in datasets:
        secured.archive.store(encode(ds), source="TEST")
    return str(datasets[0].StudyInstanceUID)


async def test_a_qido_search_is_one_query_entry(secured: Site, web: httpx.AsyncClient, stored: str) -> None:
    found = await web.get("/dicom-web/studies", params={"PatientID": SPEC.patient_id}, headers=as_(READER_TOKEN))
    assert found.status_code == 200 and len(found.json()) == 1
    (entry,) = entries(secured)
    e = entry.entry
    assert (e.principal, e.action, e.outcome, e.door, e.patient_id) == (READER, "query", "success", "http", "TRAIL01")
    assert e.detail == "GET /dicom-web/studies?PatientID=TRAIL01" and entry.site == "trail-test"


async def test_wado_retrievals_of_a_study_are_one_entry_per_principal(secured: Site, web: httpx.AsyncClient,
                                                                       stored: str) -> None:
    instances = (await web.get(f"/dicom-web/studies/{stored}/instances", headers=as_(READER_TOKEN))).json()
    secured.access_trail.flush()
    before = len(entries(secured))
    series, sop = instances[0]["0020000E"]["Value"][0], instances[0]["00080018"]["Value"][0]
    base = f"/dicom-web/studies/{stored}"
    for path in (base, f"{base}/metadata", f"{base}/series/{series}/instances/{sop}/frames/1"):
        answer = await web.get(path, headers=as_(READER_TOKEN) | {"Accept": "*/*"})
        assert answer.status_code == 200, (path, answer.text)
    await web.get(f"{base}/metadata", headers=as_(ADMIN_TOKEN))
    new = entries(secured)[before:]
    assert [(r.entry.principal, r.entry.action, r.entry.study_uid, r.entry.detail) for r in new] == [
        (READER, "retrieve", stored, f"GET {base}"), (BOSS, "retrieve", stored, f"GET {base}/metadata")]


async def test_the_study_page_and_viewer_are_view_entries(secured: Site, web: httpx.AsyncClient, stored: str) -> None:
    page = await web.get(f"/studies/{stored}", headers=as_(READER_TOKEN))
    assert page.status_code == 200, page.text
    (entry,) = entries(secured)
    assert (entry.entry.action, entry.entry.patient_id, entry.entry.study_uid) == ("view", "TRAIL01", stored)
    await web.get(f"/viewer/{stored}", headers=as_(READER_TOKEN))
    assert [(r.entry.action, r.entry.study_uid) for r in entries(secured)] == [("view", stored), ("view", stored)]


async def test_refusals_are_recorded_with_who_was_refused(secured: Site, web: httpx.AsyncClient, stored: str) -> None:
    anonymous = await web.get("/dicom-web/studies", params={"PatientID": "TRAIL01"})
    assert anonymous.status_code == 401
    page = await web.get(f"/studies/{stored}")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    wrong_role = await web.post("/api/roles", json={"role": "standby", "active_site": "B"}, headers=as_(READER_TOKEN))
    assert wrong_role.status_code == 403
    anon = Principal("anonymous", "anonymous", "anonymous", "127.0.0.1")
    assert [(r.entry.principal, r.entry.action, r.entry.outcome, r.entry.study_uid) for r in entries(secured)] == [
        (anon, "query", "refused", ""), (anon, "view", "refused", stored), (READER, "failover", "refused", "")]
    assert secured.roles.role == "active"


async def test_a_role_change_is_one_failover_entry(secured: Site, web: httpx.AsyncClient) -> None:
    answer = await web.post("/api/roles", json={"role": "standby", "active_site": "B"}, headers=as_(ADMIN_TOKEN))
    assert answer.status_code == 200, answer.text
    (entry,) = entries(secured)
    assert (entry.entry.principal, entry.entry.action, entry.entry.outcome) == (BOSS, "failover", "success")
    assert entry.entry.detail == "role set: standby, active site B"


async def test_a_deletion_is_one_entry_and_a_refused_one_too(secured: Site, web: httpx.AsyncClient,
                                                            stored: str) -> None:
    refused = await web.delete(f"/api/selftest/studies/{stored}", headers=as_(ADMIN_TOKEN))
    assert refused.status_code == 403  # not a self-test study: nothing removed
    objects = marked_study(seed=5)
    for o in objects:
        secured.archive.store(o.data, "TEST")
    selftest_uid = str(pydicom.dcmread(io.BytesIO(objects[0].data)).StudyInstanceUID)
    removed = await web.delete(f"/api/selftest/studies/{selftest_uid}", headers=as_(ADMIN_TOKEN))
    assert removed.status_code == 200, removed.text
    assert [(r.entry.principal, r.entry.action, r.entry.outcome, r.entry.study_uid) for r in entries(secured)] == [
        (BOSS, "deletion", "refused", stored), (BOSS, "deletion", "success", selftest_uid)]


async def test_a_correction_is_one_entry_naming_the_corrected_patient(secured: Site, web: httpx.AsyncClient,
                                                                       stored: str) -> None:
    secured.ris.place_order(order("P1", "ACC-NEW", Patient("RIGHT1", "HOSP", "Right^Rita")))
    answer = await web.post("/api/reconciliation/apply", headers=as_(ADMIN_TOKEN), json={
        "study": stored, "accession_number": "ACC-NEW", "reason": "wrong patient at the scanner"})
    assert answer.status_code == 200, answer.text
    (entry,) = entries(secured)
    e = entry.entry
    assert (e.principal, e.action, e.outcome, e.patient_id, e.study_uid) == (
        BOSS, "correction", "success", "RIGHT1", stored)
    assert "order P1" in e.detail and "PatientID" in e.detail
