"""A40 patient merges applied to the index (site.ris.merge_patients, as the HL7 door calls
it): the merged patient's studies are found under the surviving ID by C-FIND and QIDO-RS,
metadata shows it, orders follow, and the merge is reversed by its record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from twinpacs import cli
from twinpacs.app import Site
from twinpacs.core.ris import Patient
from twinpacs.dimse import DimseServer
from twinpacs.index.schema import patients, ris_patients, study_overrides
from twinpacs.synthetic import StudySpec
from tests.ris.conftest import findscu, metadata_value, order, store, stored_state, study_files
from tests.served import ServedApp

pytestmark = pytest.mark.anyio

PRIOR = Patient("OLD1", "HOSP", "Olsen^Ola", "19500505", "M")
SURVIVING = Patient("NEW1", "HOSP", "Olsen^Ola Petter", "19500505", "M")


def scenario(site: Site, tmp_path: Path) -> dict[str, str]:
    """Two studies under the prior ID (one of them corrected before, so it has overrides), one
    under the surviving ID; orders of both."""
    ris = site.ris
    ris.register_patient(PRIOR)
    ris.register_patient(SURVIVING)
    for placer, accession, patient in (("P21", "ACC21", PRIOR), ("P22", "ACC22", PRIOR), ("P23", "ACC23", SURVIVING)):
        ris.place_order(order(placer, accession, patient))

    def stored(name: str, seed: int, **attributes: str) -> str:
        return store(site, study_files(tmp_path / name, StudySpec(seed=seed, patient_id=name), PatientBirthDate="19500505",
                                       PatientSex="M", **attributes))
    uids = {"s1": stored("s1", 1, PatientID="OLD1", PatientName="Olsen^Ola", AccessionNumber="ACC21"),
            "s2": stored("s2", 2, PatientID="OLD1", PatientName="Olsen^Ola", AccessionNumber=""),
            "s3": stored("s3", 3, PatientID="NEW1", IssuerOfPatientID="HOSP", PatientName="Olsen^Ola Petter",
                         AccessionNumber="ACC23")}
    return uids


def counters(site: Site) -> dict[tuple[str, str], tuple[int, int, int]]:
    with site.index.db.read() as conn:
        return {(r.PatientID, r.IssuerOfPatientID): (r.num_studies, r.num_series, r.num_instances)
                for r in conn.execute(select(patients))}


def overrides(site: Site) -> dict[str, Any]:
    with site.index.db.read() as conn:
        return {r.StudyInstanceUID: (json.loads(r.attributes), json.loads(r.original))
                for r in conn.execute(select(study_overrides))}


def merged_into(site: Site) -> dict[str, str]:
    with site.index.db.read() as conn:
        return {r.PatientID: r.merged_into for r in conn.execute(select(ris_patients))}


def site_merges(site: Site) -> list[dict[str, Any]]:
    from twinpacs.web.api_ris import reconciliation
    return reconciliation(site).merges()


def cfind(server: DimseServer, folder: Path, patient_id: str) -> set[str]:
    found = findscu(server.port, folder, "QueryRetrieveLevel=STUDY", f"PatientID={patient_id}", "StudyInstanceUID",
                    model="-S")
    return {str(ds.StudyInstanceUID) for ds in found}


async def study_patient(client: httpx.AsyncClient, uid: str) -> tuple[str, str, str]:
    """(PatientID, PatientName, AccessionNumber) of every instance's metadata, which must agree."""
    seen = {tuple(metadata_value(i, t) for t in ("00100020", "00100010", "00080050"))
            for i in (await client.get(f"/dicom-web/studies/{uid}/metadata")).json()}
    (only,) = seen
    return only  # type: ignore[return-value]


async def test_merge_moves_studies_and_orders_and_unmerge_restores(
        site: Site, server: DimseServer, client: httpx.AsyncClient, tmp_path: Path) -> None:
    uids = scenario(site, tmp_path)
    fixed = await client.post("/api/reconciliation/apply", json={
        "study": uids["s2"], "accession_number": "ACC22", "reason": "linked before the merge"})
    assert fixed.status_code == 200, fixed.text
    before = {"counters": counters(site), "overrides": overrides(site), "files": stored_state(site),
              "s2": await study_patient(client, uids["s2"])}
    assert before["counters"] == {("OLD1", ""): (1, 1, 2), ("OLD1", "HOSP"): (1, 1, 2), ("NEW1", "HOSP"): (1, 1, 2)}

    record = site.ris.merge_patients(SURVIVING, "OLD1", "HOSP", message_id="MSG-A40-1")
    assert sorted(record.studies) == sorted([uids["s1"], uids["s2"]])
    assert {o.placer_number for o in site.ris.orders() if o.id in record.orders} == {"P21", "P22"}

    # Found under the surviving ID, by C-FIND and QIDO-RS; nothing left under the prior one.
    assert cfind(server, tmp_path / "f1", "NEW1") == set(uids.values())
    assert cfind(server, tmp_path / "f2", "OLD1") == set()
    qido = (await client.get("/dicom-web/studies", params={"PatientID": "NEW1"})).json()
    assert {metadata_value(s, "0020000D") for s in qido} == set(uids.values())
    assert counters(site) == {("NEW1", "HOSP"): (3, 3, 6)}
    for key in ("s1", "s2"):
        assert (await study_patient(client, uids[key]))[:2] == ("NEW1", "Olsen^Ola Petter")
    assert (await study_patient(client, uids["s2"]))[2] == "ACC22"  # the earlier correction stays
    assert {o.placer_number for o in site.ris.orders(patient_id="NEW1")} == {"P21", "P22", "P23"}
    assert merged_into(site) == {"OLD1": "NEW1", "NEW1": ""}
    referral = (await client.get(f"/api/studies/{uids['s1']}/referral")).json()
    assert referral["patient"]["id"] == "NEW1" and referral["patient_matches"] is True
    (logged,) = (await client.get("/api/operator-log", params={"action": "patient.merge"})).json()["entries"]
    assert logged["details"]["merge"] == record.id and "MSG-A40-1" in logged["reason"]
    assert stored_state(site) == before["files"]

    # Wrong input to the unmerge changes nothing.
    assert (await client.post(f"/api/merges/{record.id}/reverse", json={"reason": ""})).status_code == 400
    assert (await client.post("/api/merges/999/reverse", json={"reason": "x"})).status_code == 404
    assert counters(site) == {("NEW1", "HOSP"): (3, 3, 6)}

    # Unmerged from the shell: everything goes back where it was.
    served = ServedApp(site)
    try:
        runner = CliRunner()
        url = ["--url", served.url]
        (listed,) = json.loads(runner.invoke(cli.app, ["reconcile", "merges", "--json", *url]).stdout)
        assert (listed["id"], listed["prior"]["id"], listed["reversed"]) == (record.id, "OLD1", False)
        undone = runner.invoke(cli.app, ["reconcile", "unmerge", str(record.id), "--reason", "wrong merge",
                                         "--by", "admin.ada", *url])
        assert undone.exit_code == 0, undone.stderr
        assert "2 study(ies) and 2 order(s) back under OLD1" in undone.stdout
        again = runner.invoke(cli.app, ["reconcile", "unmerge", str(record.id), "--reason", "again", *url])
        assert again.exit_code == 1 and "reversed already" in again.stderr
    finally:
        served.stop()
    assert cfind(server, tmp_path / "f3", "OLD1") == {uids["s1"], uids["s2"]}
    assert cfind(server, tmp_path / "f4", "NEW1") == {uids["s3"]}
    assert counters(site) == before["counters"] and overrides(site) == before["overrides"]
    assert await study_patient(client, uids["s1"]) == ("OLD1", "Olsen^Ola", "ACC21")
    assert await study_patient(client, uids["s2"]) == before["s2"]
    assert {o.placer_number for o in site.ris.orders(patient_id="OLD1")} == {"P21", "P22"}
    assert merged_into(site) == {"OLD1": "", "NEW1": ""}
    (unlogged,) = (await client.get("/api/operator-log", params={"action": "patient.unmerge"})).json()["entries"]
    assert (unlogged["actor"], unlogged["reason"]) == ("admin.ada", "wrong merge")
    assert (await client.get("/api/merges")).json()["merges"][0]["reversed_by"] == "admin.ada"
    assert stored_state(site) == before["files"]


async def test_unmerge_refused_when_a_moved_study_changed_since(site: Site, client: httpx.AsyncClient,
                                                                tmp_path: Path) -> None:
    uids = scenario(site, tmp_path)
    record = site.ris.merge_patients(SURVIVING, "OLD1", "HOSP")
    relinked = await client.post("/api/reconciliation/apply", json={
        "study": uids["s2"], "accession_number": "ACC23", "reason": "it was the surviving patient's other exam"})
    assert relinked.status_code == 200, relinked.text
    site.ris.register_patient(Patient("OTHER", "HOSP", "Else^Else"))
    site.ris.place_order(order("P30", "ACC30", Patient("OTHER", "HOSP", "Else^Else")))
    moved = await client.post("/api/reconciliation/apply", json={
        "study": uids["s1"], "placer_number": "P30", "reason": "belongs to someone else"})
    assert moved.status_code == 200, moved.text
    state = counters(site), overrides(site)
    refused = await client.post(f"/api/merges/{record.id}/reverse", json={"reason": "undo"})
    assert refused.status_code == 400 and f"study {uids['s1']}" in refused.json()["error"]
    assert (counters(site), overrides(site)) == state
    assert (await client.get("/api/merges")).json()["merges"][0]["reversed"] is False


def test_merge_of_an_unknown_prior_is_recorded_and_changes_no_study(site: Site, tmp_path: Path) -> None:
    scenario(site, tmp_path)
    before = counters(site)
    record = site.ris.merge_patients(SURVIVING, "NEVER-SEEN", "HOSP")
    assert (record.studies, record.orders) == ([], [])
    assert counters(site) == before and overrides(site) == {}
    assert [m["id"] for m in site_merges(site)] == [record.id]


def test_a_late_instance_joins_its_study_under_the_surviving_patient(site: Site, tmp_path: Path) -> None:
    """A modality still sending the prior ID after the merge: the instance joins its study where
    it now is; no empty patient row comes back for the prior ID, the counters stay right."""
    import dataclasses

    from twinpacs.synthetic import encode, make_study

    uids = scenario(site, tmp_path)
    site.ris.merge_patients(SURVIVING, "OLD1", "", message_id="MSG-A40-3")
    site.ris.merge_patients(SURVIVING, "OLD1", "HOSP", message_id="MSG-A40-4")
    assert counters(site) == {("NEW1", "HOSP"): (3, 3, 6)}
    spec = dataclasses.replace(StudySpec(seed=1, patient_id="s1"), series=1, instances_per_series=3, rows=8, columns=8)
    late = make_study(spec)[-1]
    late.PatientID, late.PatientName, late.AccessionNumber = "OLD1", "Olsen^Ola", "ACC21"
    assert late.StudyInstanceUID == uids["s1"]
    site.archive.store(encode(late), source="TEST")
    assert counters(site) == {("NEW1", "HOSP"): (3, 3, 7)}
