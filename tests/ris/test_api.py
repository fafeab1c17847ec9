"""GET /api/orders with its filters, and the referral's answers when there is no order."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from twinpacs.app import Site
from twinpacs.core.ris import Code, Patient
from twinpacs.synthetic import StudySpec
from tests.ris.conftest import order, store, study_files

pytestmark = pytest.mark.anyio

ANN = Patient("PIDA", "HOSP", "Alder^Ann")


def place(site: Site) -> None:
    ris = site.ris
    ris.place_order(order("P1", "ACC1", ANN))  # CT, 2026-03-10 09:30 in Oslo
    ris.place_order(order("P2", "ACC2", ANN, modality="MR", procedure=Code("MRHEAD", "L", "MR head"),
                          scheduled_at=datetime(2026, 3, 11, 23, 30, tzinfo=timezone.utc)))  # the 12th, 00:30 in Oslo
    ris.place_order(order("P3", "ACC3", Patient("PIDB", "HOSP", "Birch^Ben")))
    ris.cancel_order("P3")


ORDER_FILTERS = {
    "none": ({}, ["P1", "P3", "P2"]),
    "status": ({"status": "scheduled"}, ["P1", "P2"]),
    "cancelled": ({"status": "cancelled"}, ["P3"]),
    "modality": ({"modality": "MR"}, ["P2"]),
    "local day": ({"date": "20260312"}, ["P2"]),
    "day range": ({"date": "20260310-20260311"}, ["P1", "P3"]),
    "open range": ({"date": "20260311-"}, ["P2"]),
    "patient": ({"patient_id": "PIDB"}, ["P3"]),
    "limit": ({"limit": "1"}, ["P1"]),
}


async def test_orders_and_their_filters(site: Site, client: httpx.AsyncClient) -> None:
    place(site)
    for case, (params, expected) in ORDER_FILTERS.items():
        response = await client.get("/api/orders", params=params)
        assert response.status_code == 200, (case, response.text)
        assert [o["placer_number"] for o in response.json()["orders"]] == expected, case
    (p2,) = (await client.get("/api/orders", params={"modality": "MR"})).json()["orders"]
    assert p2["mapped_procedure"] == {"code": "24590-2", "scheme": "LN", "meaning": "MR Brain"}
    for params, message in (({"status": "lost"}, "status must be one of"), ({"date": "2026-03-10"}, "not a date"),
                            ({"limit": "0"}, "limit must be a positive integer")):
        response = await client.get("/api/orders", params=params)
        assert response.status_code == 400 and message in response.json()["error"]


async def test_referral_says_why_there_is_none(site: Site, client: httpx.AsyncClient, tmp_path: Path) -> None:
    place(site)
    no_accession = store(site, study_files(tmp_path / "a", StudySpec(seed=1), PatientID="PIDA", AccessionNumber=""))
    unknown = store(site, study_files(tmp_path / "b", StudySpec(seed=2), PatientID="PIDA", AccessionNumber="ZZ9"))
    other = store(site, study_files(tmp_path / "c", StudySpec(seed=3), PatientID="SOMEONE", AccessionNumber="ACC1"))
    for uid, reason in (("1.2.3.99", "no study 1.2.3.99 is held here"), (no_accession, "has no accession number"),
                        (unknown, "no order has accession number ZZ9")):
        response = await client.get(f"/api/studies/{uid}/referral")
        assert response.status_code == 404 and reason in response.json()["error"], uid
    # Linked by accession, but the patient is not the order's: shown, and flagged.
    mismatched = (await client.get(f"/api/studies/{other}/referral")).json()
    assert (mismatched["placer_number"], mismatched["patient_matches"]) == ("P1", False)
    assert mismatched["study_patient"]["id"] == "SOMEONE"
