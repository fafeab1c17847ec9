"""The RIS state reaches the twinpacs peer: two live sites (A active, B standby), each served by
uvicorn. Orders, RIS patients and study corrections made at A show at B (worklist, referral,
identities in QIDO-RS, index counters and metadata), exactly counted while pending, never sent
back to where they came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from twinpacs.app import Site
from twinpacs.core.ris import OrderStatus, Patient, Priority
from twinpacs.core.ris_sync import APPLIED, HELD, KEPT, RisChange, Version, decide, order_data
from twinpacs.index.schema import patients, ris_patients, ris_versions, study_overrides
from twinpacs.synthetic import StudySpec
from tests.ris.conftest import metadata_value, order, store, study_files

from .conftest import HOST, Sites, free_port, held, twinpacs_peer, wait_for

PRIOR = Patient("OLD1", "HOSP", "Olsen^Ola", "19500505", "M")
SURVIVING = Patient("NEW1", "HOSP", "Olsen^Ola Petter", "19500505", "M")


class Pair:
    """A (active) and B (standby) as each other's twinpacs peer with RIS replication running;
    image replication starts when a test says so. B is served unless `serve_b` is False (then
    `serve_b()` later, on the port A knows)."""

    def __init__(self, sites: Sites, serve_b: bool = True) -> None:
        self.sites = sites
        self.ports = {"A": free_port(), "B": free_port()}
        self.a = sites.build("A", [twinpacs_peer("B", self.ports["B"])])
        self.b = sites.build("B", [twinpacs_peer("A", self.ports["A"])])
        self.b.roles.set("standby", "A")
        sites.serve(self.a, self.ports["A"])
        if serve_b:
            self.serve_b()
        for site in (self.a, self.b):
            assert site.ris_sync is not None
            site.ris_sync.start()

    def serve_b(self) -> None:
        self.sites.serve(self.b, self.ports["B"])

    def start_images(self) -> None:
        for site in (self.a, self.b):
            site.replication.start()  # type: ignore[union-attr]

    def url(self, site: Site, path: str) -> str:
        return f"http://{HOST}:{self.ports[site.name]}{path}"

    def sync(self, site: Site) -> dict[str, Any]:
        """/api/sync's entry for the other site."""
        (found,) = httpx.get(self.url(site, "/api/sync")).json()["peers"]
        return found  # type: ignore[no-any-return]

    def settled(self) -> None:
        """Nothing of the RIS state pending, either way (exact integers from /api/sync)."""
        wait_for(lambda: self.sync(self.a)["ris_pending"] == 0, what="A's RIS changes confirmed by B")
        assert self.sync(self.b)["ris_pending"] == 0  # what B received is not queued back to A

    def metadata(self, site: Site, uid: str) -> tuple[str, str, str]:
        """(PatientID, PatientName, AccessionNumber) as every instance's DICOMweb metadata shows them."""
        seen = {tuple(metadata_value(i, t) for t in ("00100020", "00100010", "00080050"))
                for i in httpx.get(self.url(site, f"/dicom-web/studies/{uid}/metadata")).json()}
        (only,) = seen
        return only  # type: ignore[return-value]

    def qido(self, site: Site, patient_id: str) -> set[str]:
        found = httpx.get(self.url(site, "/dicom-web/studies"), params={"PatientID": patient_id})
        return {metadata_value(s, "0020000D") for s in found.json()} if found.status_code == 200 else set()


def orders_of(site: Site) -> list[dict[str, Any]]:
    """Without the row ids, which each site numbers in the order it received them."""
    return sorted((order_data(o) for o in site.ris.orders()), key=lambda o: str(o["placer_number"]))


def counters(site: Site) -> dict[tuple[str, str], tuple[int, int, int]]:
    with site.index.db.read() as conn:
        return {(r.PatientID, r.IssuerOfPatientID): (r.num_studies, r.num_series, r.num_instances)
                for r in conn.execute(select(patients))}


def table(site: Site, which: Any) -> set[tuple[Any, ...]]:
    """The rows of a table without ids and times: what two sites must agree on."""
    with site.index.db.read() as conn:
        return {tuple(v for k, v in r._mapping.items() if k not in ("id", "updated_at"))
                for r in conn.execute(select(which))}


def origins(site: Site) -> set[str]:
    with site.index.db.read() as conn:
        return set(conn.scalars(select(ris_versions.c.origin)))


def test_orders_and_patients_reach_the_standby_with_the_referral(sites: Sites, tmp_path: Path) -> None:
    p = Pair(sites)
    a, b = p.a, p.b
    p.start_images()
    patient = Patient("PID1", "HOSP", "Hansen^Hanne", "19800101", "F")
    a.ris.register_patient(patient)
    a.ris.place_order(order("P1", "ACC1", patient, priority=Priority.STAT))
    wait_for(lambda: b.ris.order_for_accession("ACC1"), what="the order at B")
    assert orders_of(b) == orders_of(a)
    wait_for(lambda: b.ris.index.patient("PID1", "HOSP") == patient, what="the RIS patient at B")
    worklist = httpx.get(p.url(b, "/api/orders"), params={"status": "scheduled"}).json()["orders"]
    assert [(o["placer_number"], o["priority"]) for o in worklist] == [("P1", "STAT")]

    a.ris.change_order(order("P1", "ACC1", patient, priority=Priority.STAT, reason="r/o aortic dissection"))
    wait_for(lambda: b.ris.order_for_accession("ACC1").reason == "r/o aortic dissection",  # type: ignore[union-attr]
             what="the change at B")
    uid = store(a, study_files(tmp_path / "s1", StudySpec(seed=11, patient_id="PID1"), PatientID="PID1",
                               IssuerOfPatientID="HOSP", PatientName="Hansen^Hanne", AccessionNumber="ACC1"))
    wait_for(lambda: len(held(b)) == 2, what="the study's images at B")
    referral = httpx.get(p.url(b, f"/api/studies/{uid}/referral"))
    assert referral.status_code == 200, referral.text
    found = referral.json()
    assert (found["accession_number"], found["reason"], found["priority"], found["referring_physician"]) == (
        "ACC1", "r/o aortic dissection", "STAT", "Ward^Wendy")

    a.ris.cancel_order("P1")
    wait_for(lambda: b.ris.order_for_accession("ACC1").status is OrderStatus.CANCELLED,  # type: ignore[union-attr]
             what="the cancel at B")
    assert httpx.get(p.url(b, f"/api/studies/{uid}/referral")).json()["order_status"] == "cancelled"
    assert httpx.get(p.url(b, "/api/orders"), params={"status": "scheduled"}).json()["orders"] == []
    p.settled()
    assert orders_of(b) == orders_of(a) and table(b, ris_patients) == table(a, ris_patients)
    assert origins(a) == {""} and origins(b) == {"A"}  # nothing came back to A as B's


def merge_scenario(site: Site, tmp_path: Path) -> dict[str, str]:
    """As tests/ris/test_merge.py: two studies under the prior ID, one under the surviving ID."""
    site.ris.register_patient(PRIOR)
    site.ris.register_patient(SURVIVING)
    for placer, accession, patient in (("P21", "ACC21", PRIOR), ("P22", "ACC22", PRIOR), ("P23", "ACC23", SURVIVING)):
        site.ris.place_order(order(placer, accession, patient))

    def stored(name: str, seed: int, **attributes: str) -> str:
        return store(site, study_files(tmp_path / name, StudySpec(seed=seed, patient_id=name),
                                       PatientBirthDate="19500505", PatientSex="M", **attributes))
    return {"s1": stored("s1", 1, PatientID="OLD1", PatientName="Olsen^Ola", AccessionNumber="ACC21"),
            "s2": stored("s2", 2, PatientID="OLD1", PatientName="Olsen^Ola", AccessionNumber=""),
            "s3": stored("s3", 3, PatientID="NEW1", IssuerOfPatientID="HOSP", PatientName="Olsen^Ola Petter",
                         AccessionNumber="ACC23")}


def test_corrections_merge_and_unmerge_reach_the_standby(sites: Sites, tmp_path: Path) -> None:
    p = Pair(sites)
    a, b = p.a, p.b
    p.start_images()
    uids = merge_scenario(a, tmp_path)
    wait_for(lambda: len(held(b)) == 6, what="the images at B")
    p.settled()
    assert counters(b) == counters(a) == {("OLD1", ""): (2, 2, 4), ("NEW1", "HOSP"): (1, 1, 2)}

    fixed = httpx.post(p.url(a, "/api/reconciliation/apply"),
                       json={"study": uids["s2"], "accession_number": "ACC22", "reason": "linked"})
    assert fixed.status_code == 200, fixed.text
    p.settled()
    assert p.metadata(b, uids["s2"]) == ("OLD1", "Olsen^Ola", "ACC22")
    before = {"counters": counters(b), "overrides": table(b, study_overrides)}

    record = a.ris.merge_patients(SURVIVING, "OLD1", "HOSP", message_id="MSG-A40-1")
    p.settled()
    assert counters(b) == counters(a) == {("NEW1", "HOSP"): (3, 3, 6)}
    assert p.qido(b, "NEW1") == set(uids.values()) and p.qido(b, "OLD1") == set()
    assert p.metadata(b, uids["s1"]) == ("NEW1", "Olsen^Ola Petter", "ACC21")
    assert p.metadata(b, uids["s2"]) == ("NEW1", "Olsen^Ola Petter", "ACC22")
    assert table(b, study_overrides) == table(a, study_overrides)
    assert {o.placer_number for o in b.ris.orders(patient_id="NEW1")} == {"P21", "P22", "P23"}
    assert table(b, ris_patients) == table(a, ris_patients)
    referral = httpx.get(p.url(b, f"/api/studies/{uids['s1']}/referral")).json()
    assert referral["patient"]["id"] == "NEW1" and referral["patient_matches"] is True

    undone = httpx.post(p.url(a, f"/api/merges/{record.id}/reverse"), json={"reason": "wrong merge"})
    assert undone.status_code == 200, undone.text
    p.settled()
    assert counters(b) == counters(a) == before["counters"]
    assert table(b, study_overrides) == table(a, study_overrides) == before["overrides"]
    assert p.qido(b, "OLD1") == {uids["s1"], uids["s2"]} and p.qido(b, "NEW1") == {uids["s3"]}
    assert p.metadata(b, uids["s1"]) == ("OLD1", "Olsen^Ola", "ACC21")
    assert p.metadata(b, uids["s2"]) == ("OLD1", "Olsen^Ola", "ACC22")
    assert orders_of(b) == orders_of(a) and table(b, ris_patients) == table(a, ris_patients)
    assert origins(b) == {"A"}


def test_a_correction_that_arrives_before_the_images_files_the_study_under_the_corrected_patient(
        sites: Sites, tmp_path: Path) -> None:
    p = Pair(sites)  # images are not replicated yet
    a, b = p.a, p.b
    uids = merge_scenario(a, tmp_path)
    a.ris.merge_patients(SURVIVING, "OLD1", "HOSP")
    p.settled()
    assert held(b) == {} and table(b, study_overrides) == table(a, study_overrides) != set()

    p.start_images()
    wait_for(lambda: len(held(b)) == 6, what="the images at B")
    assert counters(b) == counters(a) == {("NEW1", "HOSP"): (3, 3, 6)}
    assert p.qido(b, "NEW1") == set(uids.values()) and p.qido(b, "OLD1") == set()
    assert p.metadata(b, uids["s1"]) == ("NEW1", "Olsen^Ola Petter", "ACC21")


def test_a_peer_that_is_down_leaves_the_changes_pending_and_counted(sites: Sites) -> None:
    p = Pair(sites, serve_b=False)
    a, b = p.a, p.b
    patient = Patient("PID5", "HOSP", "Berg^Bo")
    a.ris.register_patient(patient)
    for n in range(3):
        a.ris.place_order(order(f"P5{n}", f"ACC5{n}", patient))
    a.ris.cancel_order("P51")  # the same row again: still one change pending for it

    def last_error() -> str:
        (peer,) = httpx.get(p.url(a, "/api/replication/ris")).json()["peers"]
        return str(peer["last_error"])
    wait_for(lambda: "ConnectError" in last_error(), what="a failed attempt recorded")
    status = httpx.get(p.url(a, "/api/sync")).json()
    assert status["in_sync"] is False
    assert [(s["ris_pending"], s["in_sync"], s["percent"]) for s in status["peers"]] == [(4, False, "0%")]
    plan = httpx.get(p.url(a, "/api/failover/plan"), params={"to": "B"}).json()
    assert plan["ready"] is False and any("4 RIS change(s)" in r for r in plan["reasons"])
    assert [(m["kind"], m["key"]) for m in plan["missing_ris"]] == [
        ("patient", "PID5\\HOSP"), ("order", "P50"), ("order", "P52"), ("order", "P51")]
    assert plan["missing_studies"] == [] and b.ris.orders() == []

    p.serve_b()
    p.settled()
    assert orders_of(b) == orders_of(a) and len(orders_of(b)) == 3
    assert b.ris.index.patient("PID5", "HOSP") == patient
    assert httpx.get(p.url(a, "/api/replication/ris")).json()["peers"] == [{"name": "B", "pending": 0, "last_error": ""}]
    plan = httpx.get(p.url(a, "/api/failover/plan"), params={"to": "B"}).json()
    assert (plan["ready"], plan["missing_ris"], p.sync(a)["percent"]) == (True, [], "100%")
    assert origins(b) == {"A"}


def wire(placer: str, revision: int, reason: str, origin: str = "A") -> dict[str, Any]:
    data = order_data(order(placer, f"ACC-{placer}", Patient("PID9", "HOSP", "Dahl^Dag"), reason=reason))
    return RisChange("order", placer, origin, revision, data).as_wire()


def test_a_change_applied_twice_or_late_changes_nothing_and_bad_input_is_refused(sites: Sites) -> None:
    p = Pair(sites)
    b = p.b

    def send(*changes: dict[str, Any], origin: str = "A") -> httpx.Response:
        return httpx.post(p.url(b, "/api/replication/ris"), json={"changes": list(changes)},
                          headers={"X-Twinpacs-Origin": origin})

    def reason() -> str:
        found = b.ris.order_for_accession("ACC-P9")
        return found.reason if found else ""

    assert send(wire("P9", 5, "first")).json() == {"results": [APPLIED]}
    state = orders_of(b), table(b, ris_versions)
    assert send(wire("P9", 5, "first")).json() == {"results": [HELD]}  # the same change again
    assert send(wire("P9", 3, "older")).json() == {"results": [HELD]}  # a late, older one
    assert (orders_of(b), table(b, ris_versions)) == state and reason() == "first"
    assert send(wire("P9", 6, "newer")).json() == {"results": [APPLIED]} and reason() == "newer"

    # Bad input: refused with the reason, nothing applied (not even the good change before it).
    bad = send(wire("P10", 1, "fine"), {**wire("P11", 1, "x"), "kind": "invoice"})
    assert bad.status_code == 400 and "change 1" in bad.json()["error"]
    mismatched = send({**wire("P12", 1, "x"), "key": "P13"})
    assert mismatched.status_code == 400 and "placer number" in mismatched.json()["error"]
    too_long = wire("P15", 1, "x")
    too_long["data"]["accession_number"] = "A" * 17
    refused = send(too_long)
    assert refused.status_code == 400 and "at most 16" in refused.json()["error"]
    stranger = send(wire("P14", 1, "x"), origin="EVIL")
    assert stranger.status_code == 403 and "EVIL" in stranger.json()["error"]
    assert {o.placer_number for o in b.ris.orders()} == {"P9"}


@pytest.mark.parametrize(("held_version", "incoming", "active", "result"), [
    (None, ("A", 1), False, APPLIED),
    (Version("A", 4), ("A", 5), False, APPLIED),  # a later revision of the same origin wins
    (Version("A", 5), ("A", 5), True, HELD),  # the same change again: nothing to do
    (Version("A", 5), ("A", 4), False, HELD),  # a late, older one
    (Version("", 2), ("B", 9), True, KEPT),  # the active site's own change wins
    (Version("", 2), ("B", 9), False, APPLIED),  # a standby takes the active site's
    (Version("C", 2), ("B", 1), True, APPLIED),  # neither is ours: the incoming one
    (None, ("HERE", 3), False, HELD),  # our own change back by way of a third site
])
def test_the_conflict_rule(held_version: Version | None, incoming: tuple[str, int], active: bool, result: str) -> None:
    assert decide(held_version, RisChange("order", "P1", incoming[0], incoming[1], None), "HERE", active) == result
