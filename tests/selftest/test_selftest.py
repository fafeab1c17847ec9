"""`twinpacs selftest` against a real pair of sites, and the removal it relies on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from typer.testing import CliRunner

from twinpacs.app import Site
from twinpacs.cli import app
from twinpacs.core.parsing import parse_part10
from twinpacs.dimse import start_dimse
from twinpacs.index.schema import changes, operator_log
from twinpacs.selftest import Step, marked_study
from twinpacs.synthetic import StudySpec, encode, make_study
from tests.dimse.conftest import make_pki
from tests.replication.conftest import free_port, held, objects, wait_for

from .conftest import Doors, Pair

STEPS = ["site information", "DICOM echo (C-ECHO)", "store by C-STORE", "store by STOW-RS",
         "find patient (C-FIND)", "find study (C-FIND)", "find series (C-FIND)", "find image (C-FIND)",
         "find study, series, instances (QIDO-RS)", "retrieve by C-GET", "retrieve by WADO-RS",
         "replicate to peer B", "remove at site A", "remove at peer B"]


def selftest(url: str, *options: str) -> Any:
    return CliRunner().invoke(app, ["selftest", "--url", url, *options])


def get(url: str) -> Any:
    return httpx.get(url, timeout=10).json()


def blob_files(site: Site) -> set[str]:
    return {p.name for p in (site.settings.site.data_dir / "store" / "objects").rglob("*") if p.is_file()}


def change_kinds(site: Site) -> list[str]:
    with site.index.db.read() as conn:
        return list(conn.scalars(select(changes.c.kind).order_by(changes.c.seq)))


def study_uid(files: list[bytes]) -> str:
    return str(parse_part10(files[0]).dataset.StudyInstanceUID)


def in_sync(url: str) -> bool:
    return bool(get(f"{url}/api/sync")["in_sync"])


def test_healthy_pair_passes_and_leaves_nothing_behind(pair: Pair) -> None:
    for data in objects(2, seed=7, patient="CLINICAL"):  # real work the self-test must not touch
        pair.a.archive.store(data, "MODALITY")
    wait_for(lambda: in_sync(pair.url_a) and len(held(pair.b)) == 2, what="the clinical study at B")
    before = {s.name: (held(s), blob_files(s), get(f"{url}/api/audit/digest")["top"])
              for s, url in ((pair.a, pair.url_a), (pair.b, pair.url_b))}

    # As an operator runs it: a separate process, JSON for the check below.
    run = subprocess.run([sys.executable, "-m", "twinpacs", "selftest", "--url", pair.url_a, "--json"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert set(report) == {"url", "site", "study", "passed", "previous_run_at", "steps", "notes"}
    assert report["passed"] and report["site"] == "A" and report["previous_run_at"] is None
    assert [s["name"] for s in report["steps"]] == STEPS
    for step in report["steps"]:
        assert set(step) == {"name", "status", "seconds", "detail", "previous_seconds", "slower"}
        assert step["status"] == "ok" and step["seconds"] >= 0, step
    assert "held at B with the same content hash" in report["steps"][STEPS.index("replicate to peer B")]["detail"]

    # Gone from both sites, files included; what was there before is untouched and in sync.
    for site, url in ((pair.a, pair.url_a), (pair.b, pair.url_b)):
        assert httpx.get(f"{url}/api/selftest/studies/{report['study']}").status_code == 404
        assert (held(site), blob_files(site), get(f"{url}/api/audit/digest")["top"]) == before[site.name]
        assert change_kinds(site).count("removed") == 4
        sync = get(f"{url}/api/sync")
        assert sync["in_sync"] and sync["peers"][0]["held"] == sync["peers"][0]["confirmed"] == 2, sync
        with site.index.db.read() as conn:
            assert list(conn.scalars(select(operator_log.c.action))) == ["selftest.remove"]


def test_peer_down_fails_naming_the_replication_step_and_still_cleans_up(doors: Doors) -> None:
    port_a = free_port()
    a = doors.site("A", "B", free_port())  # nothing listens at B's address
    url = doors.serve(a, port_a).url

    result = selftest(url, "--timeout", "1")
    assert result.exit_code == 1
    assert "replicate to peer B: not confirmed within 1 s" in result.output
    assert "ConnectError" in result.output and "Traceback" not in result.output
    assert "remove at peer B: cannot reach" in result.output
    assert "SELF-TEST FAILED" in result.output
    # Removal at the site ran all the same: nothing held, no test object queued for B.
    assert held(a) == {} and blob_files(a) == set()
    assert get(f"{url}/api/sync")["in_sync"]


def test_a_failed_store_skips_what_depends_on_it(doors: Doors) -> None:
    port_a = free_port()
    a = doors.site("A", "B", free_port())
    url = doors.serve(a, port_a).url
    a.roles.set("standby", "B")  # a standby site refuses clinical stores, so the self-test's too

    report = json.loads(selftest(url, "--json", "--timeout", "1").output)
    status = {s["name"]: s for s in report["steps"]}
    assert not report["passed"]
    assert status["store by C-STORE"]["status"] == status["store by STOW-RS"]["status"] == "failed"
    assert "0xA700" in status["store by C-STORE"]["detail"]
    for name in ("find patient (C-FIND)", "retrieve by WADO-RS", "replicate to peer B"):
        assert status[name]["status"] == "skipped" and status[name]["seconds"] is None
    assert status["remove at site A"]["status"] == "ok"


def test_a_second_run_shows_the_previous_timings(pair: Pair) -> None:
    first = selftest(pair.url_a, "--json")
    assert first.exit_code == 0, first.output
    earlier = {s["name"]: s["seconds"] for s in json.loads(first.output)["steps"]}

    second = selftest(pair.url_a, "--json")
    assert second.exit_code == 0, second.output
    report = json.loads(second.output)
    assert report["previous_run_at"] is not None
    assert {s["name"]: s["previous_seconds"] for s in report["steps"]} == earlier

    text = selftest(pair.url_a)
    assert text.exit_code == 0, text.output
    assert "previous self-test: 20" in text.output and "SELF-TEST PASSED" in text.output


def test_a_step_twice_as_slow_is_flagged_above_timer_noise() -> None:
    assert Step("x", "ok", 0.9, previous_seconds=0.4).slower
    assert not Step("x", "ok", 0.7, previous_seconds=0.4).slower
    assert not Step("x", "ok", 0.03, previous_seconds=0.01).slower  # noise
    assert not Step("x", "ok", 0.9).slower and not Step("x", "skipped", None, previous_seconds=0.1).slower


def test_removal_refuses_what_is_not_a_selftest_object(pair: Pair) -> None:
    a, url = pair.a, pair.url_a
    clinical = [encode(ds) for ds in make_study(StudySpec(patient_id="REAL1", series=1, instances_per_series=2,
                                                          rows=8, columns=8, seed=3))]
    for data in clinical:
        a.archive.store(data, "MODALITY")
    study = study_uid(clinical)
    kept = (held(a), blob_files(a))

    refused = httpx.delete(f"{url}/api/selftest/studies/{study}")
    assert refused.status_code == 403
    assert "not a self-test object" in refused.json()["error"] and "nothing removed" in refused.json()["error"]
    assert (held(a), blob_files(a)) == kept

    # A marked study holding one object of another patient (same Study Instance UID) is refused whole.
    marked = marked_study(seed=11)
    intruder = make_study(StudySpec(patient_id="REAL2", series=1, instances_per_series=1, rows=8, columns=8, seed=4))[0]
    intruder.StudyInstanceUID = str(study_uid([o.data for o in marked]))
    for data in [o.data for o in marked] + [encode(intruder)]:
        a.archive.store(data, "TEST")
    kept = (held(a), blob_files(a))
    mixed = httpx.delete(f"{url}/api/selftest/studies/{study_uid([o.data for o in marked])}")
    assert mixed.status_code == 403 and "is not marked" in mixed.json()["error"]
    assert (held(a), blob_files(a)) == kept

    assert httpx.delete(f"{url}/api/selftest/studies/1.2.3.4.5").status_code == 404


def test_site_information_names_the_doors_and_peers(pair: Pair) -> None:
    info = get(f"{pair.url_a}/api/site")
    assert (info["site"], info["role"], info["ae_title"]) == ("A", "active", "A")
    assert info["dicom"]["port"] == pair.a.dicom_port > 0
    assert info["http"]["url"] == pair.url_a
    assert info["peers"] == [{"name": "B", "kind": "twinpacs", "base_url": pair.url_b,
                              "ae_title": "", "host": "127.0.0.1", "port": 0}]


def test_a_dimse_peer_is_confirmed_by_storage_commitment_and_named_as_left_to_clean(doors: Doors) -> None:
    port_b = free_port()
    b = doors.sites.build("B", [], dicom={"port": port_b})  # any archive taking C-STORE and commitment
    doors.dimse.append(start_dimse(b))
    a = doors.sites.build("A", [{"name": "V", "kind": "dimse", "ae_title": "B", "host": "127.0.0.1",
                                 "port": port_b, "storage_commitment": True}])
    doors.dimse.append(start_dimse(a))
    a.dicom_port = doors.dimse[-1].port
    a.replication.start()  # type: ignore[union-attr]
    url = doors.serve(a, free_port()).url

    result = selftest(url, "--json")
    report = json.loads(result.output)
    assert result.exit_code == 0 and report["passed"], result.output
    names = [s["name"] for s in report["steps"]]
    assert "replicate to peer V" in names and "remove at peer V" not in names
    assert any("may remain at DIMSE peer V" in note for note in report["notes"])
    assert len(held(b)) == 4 and held(a) == {}


def test_a_site_whose_dicom_port_is_tls_only_is_tested_with_its_own_certificate(
        doors: Doors, tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    tls = {"tls_cert_file": pki.node_cert, "tls_key_file": pki.node_key, "tls_ca_file": pki.ca,
           "tls_require_client_cert": True, "tls_remote_ca_file": pki.ca}
    a = doors.sites.build("A", [], dicom=tls)
    doors.dimse.append(start_dimse(a))
    a.dicom_port = doors.dimse[-1].port
    url = doors.serve(a, free_port()).url
    assert get(f"{url}/api/site")["dicom"]["tls"] is True

    # Without the site's configuration there is no certificate to call with: said, not hung.
    report = json.loads(selftest(url, "--json").output)
    echo = next(s for s in report["steps"] if s["name"] == "DICOM echo (C-ECHO)")
    assert not report["passed"] and "takes DICOM TLS only: run the self-test with --config" in echo["detail"]

    config = tmp_path / "a.toml"
    config.write_text("".join(f'{key} = "{value}"\n' for key, value in [
        ("site.data_dir", a.settings.site.data_dir), ("database.url", a.settings.database.url),
        *((f"dicom.{k}", v) for k, v in tls.items() if k != "tls_require_client_cert")]) + "dicom.tls_require_client_cert = true\n")
    result = selftest(url, "--config", str(config), "--json")
    report = json.loads(result.output)
    assert result.exit_code == 0 and report["passed"], result.output
    assert held(a) == {}
