"""The actions outside a web request, each leaving exactly one entry: HL7 patient registrations
and updates, new, changed and cancelled orders, an A40 merge (each by the sending application,
from its address) and its unmerge over HTTP, and a start whose configuration changed (by the OS
user who started it)."""

from __future__ import annotations

import getpass
from pathlib import Path

import httpx
import pytest

from twinpacs.core.principal import Principal
from twinpacs.fingerprint import record_start
from twinpacs.web import create_app
from tests.hl7.conftest import PID, PV1, Door, door, loop, message, msa, nw, obr, orc, start_door  # noqa: F401
from tests.trail.conftest import entries, make_site

OLD_PID = "PID|1||OLD1^^^HOSP||Nordmann^Ola||19800131|M"


def test_an_a40_merge_is_one_entry_by_the_sending_application(door: Door) -> None:  # noqa: F811
    assert msa(door.send(message("ADT^A01", "A1", OLD_PID)))[0] == "AA"
    assert msa(door.send(message("ADT^A01", "A2", PID)))[0] == "AA"
    assert len(entries(door.site)) == 2  # the two registrations

    assert msa(door.send(message("ADT^A40^ADT_A39", "M1", "EVN|A40", PID, "MRG|OLD1^^^HOSP")))[0] == "AA"
    (merged,) = entries(door.site, action="merge")
    e = merged.entry
    assert e.principal == Principal("RIS^HOSP", "hl7", "application", "127.0.0.1")
    assert (e.action, e.outcome, e.door, e.patient_id) == ("merge", "success", "hl7", "P100")
    assert "OLD1" in e.detail and "M1" in e.detail

    # A merge of a patient into itself is refused (AE): recorded as failed.
    assert msa(door.send(message("ADT^A40", "M2", "EVN|A40", PID, "MRG|P100^^^HOSP")))[0] == "AE"
    failed = entries(door.site)[-1].entry
    assert (failed.action, failed.outcome, failed.patient_id) == ("merge", "failed", "P100")
    assert len(entries(door.site, action="merge")) == 2


def test_patient_and_order_changes_are_one_entry_each_by_the_sending_application(door: Door) -> None:  # noqa: F811
    sender = Principal("RIS^HOSP", "hl7", "application", "127.0.0.1")
    sent = [message("ADT^A04", "A1", PID), message("ADT^A08", "A2", PID), nw("O1", "PL1", "ACC1"),
            message("ORM^O01", "O2", PID, PV1, orc("XO", "PL1"), obr("PL1", "ACC1", modality="MR")),
            message("ORM^O01", "O3", PID, PV1, orc("CA", "PL1"))]
    for text in sent:
        assert msa(door.send(text))[0] == "AA"
    found = [(r.entry.action, r.entry.outcome, r.entry.door, r.entry.patient_id, r.entry.detail.split(" (")[0])
             for r in entries(door.site)]
    assert found == [("store", "success", "hl7", "P100", "patient P100"),
                     ("correction", "success", "hl7", "P100", "patient P100"),
                     ("store", "success", "hl7", "P100", "order PL1"),
                     ("correction", "success", "hl7", "P100", "order PL1"),
                     ("correction", "success", "hl7", "P100", "order PL1")]
    details = [r.entry.detail for r in entries(door.site)]
    assert details[1] == "patient P100 (ADT^A08, message A2)" and "(cancelled)" in details[4]
    assert all(r.entry.principal == sender for r in entries(door.site))

    # A refused message changed nothing and is in the HL7 message log, not in the trail.
    assert msa(door.send(message("ORM^O01", "O4", PID, PV1, orc("XO", "NOPE"), obr("NOPE", "ACC9"))))[0] == "AE"
    assert len(entries(door.site)) == 5


@pytest.mark.anyio
async def test_an_unmerge_over_http_is_one_merge_entry(door: Door) -> None:  # noqa: F811
    site = door.site
    assert msa(door.send(message("ADT^A01", "A1", OLD_PID)))[0] == "AA"
    assert msa(door.send(message("ADT^A40", "M1", "EVN|A40", PID, "MRG|OLD1^^^HOSP")))[0] == "AA"
    merge_id = 1  # the first merge of a new index
    transport = httpx.ASGITransport(app=create_app(site))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        undone = await client.post(f"/api/merges/{merge_id}/reverse", json={"reason": "wrong patient"})
    assert undone.status_code == 200, undone.text
    merge, unmerge = entries(site, action="merge")
    assert merge.entry.door == "hl7" and unmerge.entry.door == "http"
    assert (unmerge.entry.action, unmerge.entry.outcome, unmerge.entry.patient_id) == ("merge", "success", "OLD1")
    assert unmerge.entry.detail.startswith(f"unmerge {merge_id}: OLD1 back from P100")


def test_a_changed_configuration_at_start_is_one_entry(tmp_path: Path) -> None:
    data_dir = tmp_path / "site"
    first = make_site(data_dir)
    try:
        record_start(first)
        record_start(first)  # unchanged: nothing
        assert entries(first) == []
    finally:
        first.close()
    second = make_site(data_dir, replication={"batch_size": 7})
    try:
        record = record_start(second)
        assert not record.changes.empty  # type: ignore[union-attr]
        (changed,) = entries(second)
        e = changed.entry
        assert e.principal == Principal(getpass.getuser(), "operator", "local")
        assert (e.action, e.outcome, e.door) == ("configuration", "success", "cli")
        assert "replication.batch_size" in e.detail
    finally:
        second.close()
