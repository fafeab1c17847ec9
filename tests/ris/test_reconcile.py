"""The reconciliation list and its corrections, over HTTP and from the shell: what is listed
and why, a correction reaching the index, QIDO-RS and metadata without touching a stored file
(G2), the operator log, and wrong input changing nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from twinpacs import cli
from twinpacs.app import Site
from twinpacs.core.ris import Code, Patient
from twinpacs.synthetic import StudySpec
from tests.ris.conftest import metadata_value, order, store, stored_state, study_files
from tests.served import ServedApp

pytestmark = pytest.mark.anyio

ALICE = Patient("PIDA", "HOSP", "Ash^Alice", "19900101", "F")
BOB = Patient("PIDB", "HOSP", "Birch^Bob", "", "M")
CARL = Patient("PIDC", "HOSP", "Cedar^Carl", "19600606", "M")


def scenario(site: Site, tmp_path: Path) -> dict[str, str]:
    """Orders, a registered patient and four stored studies; the studies' UIDs by role."""
    ris = site.ris
    ris.place_order(order("P10", "ACC10", ALICE))
    ris.place_order(order("P11", "ACC11", ALICE, procedure=Code("ODD1", "L", "odd procedure")))
    ris.place_order(order("P12", "ACC12", BOB))
    ris.place_order(order("P13", "ACC13", BOB, procedure=Code("ODD2", "L", "cancelled odd one")))
    ris.cancel_order("P13")
    ris.place_order(order("P14", "ACC14", CARL))
    ris.register_patient(Patient("PIDB", "HOSP", "Birch^Bob", "19750101", "M"))  # the RIS knows more than P12

    def stored(name: str, seed: int, **attributes: str) -> str:
        return store(site, study_files(tmp_path / name, StudySpec(seed=seed, patient_id=name), **attributes))
    return {
        "linked": stored("linked", 1, PatientID="PIDA", PatientName="ASH^ALICE", AccessionNumber="ACC10",
                         PatientBirthDate="19900101", PatientSex="F"),
        "no_accession": stored("no_accession", 2, PatientID="PIDA", PatientName="Ash^Alice", AccessionNumber="",
                               PatientBirthDate="19900101", PatientSex="F"),
        "unknown": stored("unknown", 3, PatientID="TMP-123", PatientName="Unknown^Trauma", AccessionNumber="ER999",
                          PatientBirthDate="", PatientSex="O"),
        "mismatch": stored("mismatch", 4, PatientID="PIDX", PatientName="Wrong^Person", AccessionNumber="ACC12",
                           PatientBirthDate="19750102", PatientSex="M"),
    }


def by_kind(listing: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for item in listing["items"]:
        found.setdefault(item["kind"], []).append(item)
    return found


async def test_the_list_says_what_differs_and_what_to_do(site: Site, client: httpx.AsyncClient, tmp_path: Path) -> None:
    uids = scenario(site, tmp_path)
    listing = (await client.get("/api/reconciliation")).json()
    assert listing["totals"] == {"no-order": 2, "patient-mismatch": 1, "unmapped-procedure": 1}
    kinds = by_kind(listing)
    no_order = {i["study"]["uid"]: i for i in kinds["no-order"]}
    assert set(no_order) == {uids["no_accession"], uids["unknown"]}  # "ASH^ALICE" vs "Ash^Alice" is no mismatch
    assert no_order[uids["no_accession"]]["problem"] == "the study has no accession number"
    assert no_order[uids["no_accession"]]["candidates"] == ["P11", "P10"]  # Alice's orders, newest first
    assert "ER999 belongs to no order" in no_order[uids["unknown"]]["problem"]
    assert "reconcile apply" in no_order[uids["unknown"]]["action"]

    (mismatch,) = kinds["patient-mismatch"]
    assert mismatch["study"]["uid"] == uids["mismatch"] and mismatch["order"]["placer_number"] == "P12"
    assert {(d["attribute"], d["study"], d["expected"], d["source"]) for d in mismatch["differences"]} == {
        ("PatientID", "PIDX", "PIDB", "order"), ("PatientName", "Wrong^Person", "Birch^Bob", "order"),
        ("PatientBirthDate", "19750102", "19750101", "ris")}
    assert "--accession ACC12" in mismatch["action"]

    (unmapped,) = kinds["unmapped-procedure"]  # P13 is unmapped too, but cancelled
    assert unmapped["order"]["placer_number"] == "P11" and unmapped["study"] is None
    assert "'ODD1'" in unmapped["problem"] and 'ris.procedure_codes."ODD1"' in unmapped["action"]

    cut = (await client.get("/api/reconciliation", params={"limit": 1})).json()
    assert len(by_kind(cut)["no-order"]) == 1 and cut["totals"] == listing["totals"]


async def test_apply_links_the_study_without_rewriting_a_file(site: Site, client: httpx.AsyncClient,
                                                              tmp_path: Path) -> None:
    uids = scenario(site, tmp_path)
    study = uids["unknown"]
    before = stored_state(site)
    answer = await client.post("/api/reconciliation/apply", json={
        "study": study, "placer_number": "P14", "reason": "trauma patient identified", "actor": "admin.anna"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["changes"] == {
        "AccessionNumber": {"before": "ER999", "after": "ACC14"}, "PatientID": {"before": "TMP-123", "after": "PIDC"},
        "IssuerOfPatientID": {"before": "", "after": "HOSP"},
        "PatientName": {"before": "Unknown^Trauma", "after": "Cedar^Carl"},
        "PatientBirthDate": {"before": "", "after": "19600606"}, "PatientSex": {"before": "O", "after": "M"}}

    # The index: QIDO-RS finds it under the order's patient only, the counters followed.
    found = (await client.get("/dicom-web/studies", params={"PatientID": "PIDC", "includefield": "AccessionNumber"})).json()
    assert [metadata_value(s, "0020000D") for s in found] == [study]
    assert metadata_value(found[0], "00080050") == "ACC14"
    assert (await client.get("/dicom-web/studies", params={"PatientID": "TMP-123"})).json() == []
    assert _patient_counters(site) == {"PIDA": (2, 2, 4), "PIDX": (1, 1, 2), "PIDC": (1, 1, 2)}  # TMP-123's row went

    # DICOMweb metadata shows the correction; the stored files are the same bytes, never rewritten.
    metadata = (await client.get(f"/dicom-web/studies/{study}/metadata")).json()
    assert len(metadata) == 2
    for instance in metadata:
        assert [metadata_value(instance, t) for t in ("00100020", "00100010", "00100030", "00100040", "00080050")] == [
            "PIDC", "Cedar^Carl", "19600606", "M", "ACC14"]
    assert stored_state(site) == before

    # The referral is now one click away, and the study left the list; the operator log says who and why.
    referral = (await client.get(f"/api/studies/{study}/referral")).json()
    assert (referral["placer_number"], referral["patient_matches"]) == ("P14", True)
    listing = (await client.get("/api/reconciliation")).json()
    assert study not in {i["study"]["uid"] for i in listing["items"] if i["study"]}
    (entry,) = (await client.get("/api/operator-log", params={"action": "reconcile.apply"})).json()["entries"]
    assert (entry["actor"], entry["reason"]) == ("admin.anna", "trauma patient identified")
    assert entry["details"]["study"] == study and entry["details"]["order"] == "P14"
    assert entry["details"]["changes"]["PatientID"] == {"before": "TMP-123", "after": "PIDC"}

    # The mismatched study takes its order's patient as the RIS registered it (birth date from ADT).
    mismatch = await client.post("/api/reconciliation/apply", json={
        "study": uids["mismatch"], "accession_number": "ACC12", "reason": "wrong patient selected at the modality"})
    assert mismatch.status_code == 200, mismatch.text
    assert mismatch.json()["changes"]["PatientBirthDate"] == {"before": "19750102", "after": "19750101"}
    assert (await client.get("/api/reconciliation")).json()["totals"] == {
        "no-order": 1, "patient-mismatch": 0, "unmapped-procedure": 1}
    again = await client.post("/api/reconciliation/apply", json={
        "study": uids["mismatch"], "accession_number": "ACC12", "reason": "once more"})
    assert again.json()["changes"] == {}
    assert stored_state(site) == before


def _patient_counters(site: Site) -> dict[str, tuple[int, int, int]]:
    from sqlalchemy import select

    from twinpacs.index.schema import patients
    with site.index.db.read() as conn:
        return {r.PatientID: (r.num_studies, r.num_series, r.num_instances) for r in conn.execute(select(patients))}


async def test_counters_follow_the_study(site: Site, client: httpx.AsyncClient, tmp_path: Path) -> None:
    uids = scenario(site, tmp_path)
    assert _patient_counters(site)["PIDA"] == (2, 2, 4)
    done = await client.post("/api/reconciliation/apply", json={
        "study": uids["no_accession"], "accession_number": "ACC14", "reason": "belongs to Carl"})
    assert done.status_code == 200, done.text
    counters = _patient_counters(site)
    assert counters["PIDA"] == (1, 1, 2) and counters["PIDC"] == (1, 1, 2)


WRONG = {
    "unknown study": ({"study": "1.2.3.4", "placer_number": "P14", "reason": "x"}, 404, "no study 1.2.3.4"),
    "unknown order": ({"placer_number": "NOPE", "reason": "x"}, 404, "no order with placer number NOPE"),
    "no reason": ({"placer_number": "P14", "reason": "  "}, 400, "needs a reason"),
    "two orders": ({"placer_number": "P14", "accession_number": "ACC10", "reason": "x"}, 400, "exactly one"),
    "no order": ({"reason": "x"}, 400, "exactly one"),
    "cancelled order": ({"placer_number": "P13", "reason": "x"}, 400, "cancelled"),
    "reason not text": ({"placer_number": "P14", "reason": 5}, 400, "reason must be a string"),
}


async def test_wrong_input_changes_nothing(site: Site, client: httpx.AsyncClient, tmp_path: Path) -> None:
    uids = scenario(site, tmp_path)
    listing, files = (await client.get("/api/reconciliation")).json(), stored_state(site)
    counters = _patient_counters(site)
    for case, (body, status, message) in WRONG.items():
        answer = await client.post("/api/reconciliation/apply", json={"study": uids["unknown"], **body})
        assert answer.status_code == status, case
        assert message in answer.json()["error"], case
    assert (await client.post("/api/reconciliation/apply", content=b"[1")).status_code == 400
    assert (await client.get("/api/reconciliation")).json() == listing
    assert (await client.get("/api/operator-log")).json()["entries"] == []
    assert _patient_counters(site) == counters and stored_state(site) == files


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "twinpacs", "reconcile", *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_from_the_shell(site: Site, tmp_path: Path) -> None:
    uids = scenario(site, tmp_path)
    served = ServedApp(site)
    try:
        url = ["--url", served.url]
        # Two commands as an operator runs them, side by side (each start costs a Python start-up);
        # the rest through the same command-line app in this process.
        table, done = start("list", *url), start("apply", uids["mismatch"], "--accession", "ACC12", "--reason",
                                                 "wrong patient at the modality", "--by", "shell.sam", "--json", *url)
        table, done = finish(table), finish(done)
        assert table.returncode == 0 and "orders of this patient: P11, P10" in table.stdout
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["changes"]["PatientID"] == {"before": "PIDX", "after": "PIDB"}
        runner = CliRunner()
        listing = runner.invoke(cli.app, ["reconcile", "list", "--json", *url])
        assert json.loads(listing.stdout)["totals"] == {"no-order": 2, "patient-mismatch": 0, "unmapped-procedure": 1}
        missing = runner.invoke(cli.app, ["reconcile", "apply", uids["unknown"], "--order", "P14", *url])
        assert missing.exit_code == 2 and "--reason" in missing.stderr
        unknown = runner.invoke(cli.app, ["reconcile", "apply", uids["unknown"], "--order", "NOPE", "--reason", "r", *url])
        assert unknown.exit_code == 1 and "no order with placer number NOPE" in unknown.stderr
        assert "Traceback" not in table.stderr + done.stderr + missing.stderr + unknown.stderr
        with httpx.Client(base_url=served.url) as client:
            (entry,) = client.get("/api/operator-log").json()["entries"]
        assert (entry["actor"], entry["reason"]) == ("shell.sam", "wrong patient at the modality")
    finally:
        served.stop()
