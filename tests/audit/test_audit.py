"""G5: the audit lists exactly what differs between two twinpacs sites, and --repair fixes it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from pydicom import dcmread

from twinpacs.audit_clients import Copier, HttpDigestSource, site_deep_check
from twinpacs.core.audit import AuditLevel, AuditReport, Where, audit, repair_plan
from twinpacs.synthetic import StudySpec, make_study

from .conftest import SHARED, ServedSite

EXTRA = StudySpec(patient_id="AUDX", patient_name="Extra^Only", study_date="20261201",
                  accession_number="ACC-X", series=1, instances_per_series=3, rows=16, columns=16, seed=77)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as c:
        yield c


def _audit(client: httpx.Client, a: ServedSite, b: ServedSite) -> AuditReport:
    return audit(HttpDigestSource(client, a.url), HttpDigestSource(client, b.url))


def _keys(report: AuditReport, level: AuditLevel) -> list[tuple[str, Where]]:
    return [(d.key, d.where) for d in report.at(level)]


def _first_instance(site: ServedSite) -> tuple[str, str, str]:
    row = site.site.index.stored_instances({"StudyInstanceUID": _study_uid(SHARED[1])})[0]
    return row.sop_instance_uid, row.series_instance_uid, row.study_instance_uid


def _study_uid(spec: StudySpec) -> str:
    return str(make_study(spec)[0].StudyInstanceUID)


def test_identical_sites_are_confirmed_by_the_top_digests_alone(twins: tuple[ServedSite, ServedSite],
                                                               client: httpx.Client) -> None:
    report = _audit(client, *twins)
    assert report.identical and report.differences == [] and report.requests == 1
    assert report.a == "A" and report.b == "B" and report.a_top.instances == report.b_top.instances == 12


def test_an_instance_deleted_behind_twinpacs_back_is_listed_with_its_study_and_patient(
        twins: tuple[ServedSite, ServedSite], client: httpx.Client) -> None:
    a, b = twins
    sop, series, study = _first_instance(b)
    b.sql('DELETE FROM instances WHERE "SOPInstanceUID" = :sop', sop=sop)
    report = _audit(client, a, b)
    assert not report.identical
    assert _keys(report, AuditLevel.INSTANCE) == [(sop, Where.MISSING_ON_B)]
    assert _keys(report, AuditLevel.SERIES) == [(series, Where.DIFFERS)]
    assert _keys(report, AuditLevel.STUDY) == [(study, Where.DIFFERS)]
    assert _keys(report, AuditLevel.PATIENT) == [("AUD2\\", Where.DIFFERS)]
    found = report.at(AuditLevel.STUDY)[0].context
    assert (found["PatientID"], found["PatientName"], found["AccessionNumber"], found["StudyDate"]) == \
        ("AUD2", "Audit^Pat2", "ACC-AUD2", "20261102")
    assert report.at(AuditLevel.INSTANCE)[0].context["StudyInstanceUID"] == study


def test_repair_copies_in_the_right_direction_and_the_reaudit_is_clean(
        twins: tuple[ServedSite, ServedSite], client: httpx.Client) -> None:
    a, b = twins
    sop, _, _ = _first_instance(b)
    b.sql('DELETE FROM instances WHERE "SOPInstanceUID" = :sop', sop=sop)
    a.store(EXTRA)  # a whole study missing on B
    b.store(StudySpec(patient_id="AUDB", series=1, instances_per_series=1, rows=16, columns=16, seed=88))
    plan = repair_plan(_audit(client, a, b))
    assert [c.to_b for c in plan].count(True) == 4 and [c.to_b for c in plan].count(False) == 1
    assert plan[0].StudyDate == "20261201"  # the most recent study first
    copier = Copier(client, a.url, b.url, "A", "B")
    for item in plan:
        copier.copy(item)
    assert _audit(client, a, b).identical


def test_a_study_only_on_a_is_missing_on_b_down_to_each_instance(twins: tuple[ServedSite, ServedSite],
                                                                 client: httpx.Client) -> None:
    a, b = twins
    a.store(EXTRA)
    report = _audit(client, a, b)
    assert _keys(report, AuditLevel.PATIENT) == [("AUDX\\", Where.MISSING_ON_B)]
    study = report.at(AuditLevel.STUDY)
    assert [(d.key, d.where, d.context["AccessionNumber"], d.a.instances if d.a else 0) for d in study] == \
        [(_study_uid(EXTRA), Where.MISSING_ON_B, "ACC-X", 3)]
    assert len(report.at(AuditLevel.INSTANCE)) == 3
    assert {d.where for d in report.differences} == {Where.MISSING_ON_B}


def test_a_different_content_hash_is_listed_as_differs_and_not_repaired(
        twins: tuple[ServedSite, ServedSite], client: httpx.Client) -> None:
    a, b = twins
    sop, _, _ = _first_instance(b)
    b.sql('UPDATE instances SET content_hash = :hash WHERE "SOPInstanceUID" = :sop', hash="0" * 64, sop=sop)
    report = _audit(client, a, b)
    assert _keys(report, AuditLevel.INSTANCE) == [(sop, Where.DIFFERS)]
    d = report.at(AuditLevel.INSTANCE)[0]
    assert d.b is not None and d.b.digest == "0" * 64 and d.a is not None and d.a.digest != d.b.digest
    assert repair_plan(report) == []


def test_deep_mode_finds_a_deleted_and_a_corrupted_file(twins: tuple[ServedSite, ServedSite],
                                                         client: httpx.Client) -> None:
    _, b = twins
    held = b.site.index.stored_instances({"StudyInstanceUID": _study_uid(SHARED[0])})
    gone, damaged = (b.site.archive.path(held[0]), b.site.archive.path(held[1]))
    assert gone is not None and damaged is not None
    gone.unlink()
    ds = dcmread(damaged)
    ds.PatientName = "Tampered^Name"
    damaged.chmod(0o644)
    ds.save_as(damaged)
    result = site_deep_check(client, b.url)
    assert result["checked"] == 12
    assert sorted((p["SOPInstanceUID"], p["problem"]) for p in result["problems"]) == sorted(
        [(held[0].sop_instance_uid, "missing"), (held[1].sop_instance_uid, "corrupt")])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "twinpacs", "audit", *args],
                          capture_output=True, text=True, timeout=60)


def test_cli_audit_and_repair(twins: tuple[ServedSite, ServedSite]) -> None:
    a, b = twins
    assert _cli("--url", a.url, "--against", b.url).returncode == 0
    sop, _, _ = _first_instance(b)
    b.sql('DELETE FROM instances WHERE "SOPInstanceUID" = :sop', sop=sop)
    found = _cli("--url", a.url, "--against", b.url, "--json")
    assert found.returncode == 1, found.stderr
    report = json.loads(found.stdout)
    assert [(i["key"], i["where"]) for i in report["instances"]] == [(sop, "missing_on_b")]
    assert report["studies"][0]["PatientID"] == "AUD2"
    text = _cli("--url", a.url, "--against", b.url)
    assert text.returncode == 1 and sop in text.stdout and "missing on B" in text.stdout
    repaired = _cli("--url", a.url, "--against", b.url, "--repair", "--json")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    body = json.loads(repaired.stdout)
    assert body["repair"] == {"copied": 1, "failed": []} and body["after_repair"]["identical"] is True
    assert _cli("--url", a.url, "--against", b.url).returncode == 0


def test_cli_usage_and_unreachable_peer(twins: tuple[ServedSite, ServedSite]) -> None:
    a, _ = twins
    assert _cli("--url", a.url).returncode == 2
    assert _cli("--url", a.url, "--against", "http://127.0.0.1:9").returncode == 3
