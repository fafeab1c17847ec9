"""ORM^O01 and OMI^O23 over MLLP: NW places, XO changes, CA/DC cancel; each field read from its
configured location; wrong orders refused with AE and the order table untouched."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from twinpacs.core.ris import Code, Order, OrderStatus, Patient, Priority
from tests.hl7.conftest import PID, PV1, Door, StartDoor, err, message, msa, nw, obr, orc

PATIENT = Patient("P100", "HOSP", "Nordmann^Ola^Kari^Dr^Jr", "19800131", "M")


def test_orm_nw_places_the_order_with_every_field_mapped(door: Door) -> None:
    body = message("ORM^O01", "O1", PID, PV1, orc("NW", "PL1", "FL1", priority="S"), obr("PL1", "ACC1"))

    ack = door.send(body)

    assert msa(ack) == ("AA", "O1", "")
    assert ack["MSH.F9.R1.C2"] == "O01"
    order = door.order("PL1")
    assert order is not None and order.id
    assert order == Order(
        id=order.id, placer_number="PL1", filler_number="FL1", accession_number="ACC1", patient=PATIENT,
        procedure=Code("CTCHEST", "L", "CT chest"), mapped_procedure=Code("24627-2", "LN", "CT Chest"),
        modality="CT", body_part="",
        scheduled_at=datetime(2026, 3, 2, 8, 30, tzinfo=timezone.utc),  # 09:30 in Oslo (hl7.timezone)
        station_ae="CT1", priority=Priority.STAT, referring_physician="Doktor^Dora", reason="Chest pain",
        clinical_info="Cough for 3 weeks", status=OrderStatus.SCHEDULED)
    assert door.log()[-1].raw == body


def test_omi_o23_reads_ipc_and_tq1(door: Door) -> None:
    """No OBR-18/OBR-24/OBR-36 here: the accession and modality come from IPC, the time
    (with its own offset) and priority from TQ1, the referring physician from PV1-8."""
    ack = door.send(message(
        "OMI^O23^OMI_O23", "O2", PID, PV1, "ORC|NW|PL2^RIS|FL2",
        "TQ1|1||||||20260302143000+0100||A",
        "OBR|1|PL2^RIS|FL2|MRHEAD^MR head^L|||||||||Headache \\T\\ nausea",
        "IPC|ACC2^RIS|RP1|1.2.3.4|SPS1|MR^Magnetic resonance^DCM"))

    assert msa(ack)[0] == "AA", msa(ack)
    order = door.order("PL2")
    assert order is not None
    assert (order.accession_number, order.modality, order.priority) == ("ACC2", "MR", Priority.ASAP)
    assert order.scheduled_at == datetime(2026, 3, 2, 13, 30, tzinfo=timezone.utc)
    assert order.referring_physician == "Lege^Lise"
    assert order.clinical_info == "Headache & nausea"  # HL7 escapes undone
    assert order.procedure == Code("MRHEAD", "L", "MR head") and order.mapped_procedure is None


@pytest.mark.parametrize(("value", "expected"), [("S", Priority.STAT), ("A", Priority.ASAP), ("P", Priority.ASAP),
                                                 ("T", Priority.ASAP), ("C", Priority.ASAP),
                                                 ("R", Priority.ROUTINE), ("", Priority.ROUTINE)])
def test_priority_codes(door: Door, value: str, expected: Priority) -> None:
    assert msa(door.send(nw("O1", "PL1", "ACC1", priority=value)))[0] == "AA"  # from OBR-27.6
    order = door.order("PL1")
    assert order is not None and order.priority == expected


def test_xo_changes_and_ca_dc_cancel(door: Door) -> None:
    assert msa(door.send(nw("O1", "PL1", "ACC1")))[0] == "AA"
    assert msa(door.send(nw("O2", "PL2", "ACC2")))[0] == "AA"
    placed = door.order("PL1")

    changed = message("ORM^O01", "O3", PID, orc("XO", "PL1", priority="S"),
                      obr("PL1", "ACC1", scheduled="20260303080000+0000", station="CT2"))
    assert msa(door.send(changed))[0] == "AA"
    order = door.order("PL1")
    assert order is not None and placed is not None
    assert (order.id, order.status, order.priority, order.station_ae) == (placed.id, OrderStatus.SCHEDULED,
                                                                          Priority.STAT, "CT2")
    assert order.scheduled_at == datetime(2026, 3, 3, 8, 0, tzinfo=timezone.utc)

    # A cancel needs no patient: ORC alone is enough
    assert msa(door.send(message("ORM^O01", "O4", "ORC|CA|PL1^RIS")))[0] == "AA"
    assert msa(door.send(message("OMI^O23", "O5", "ORC|DC|PL2^RIS")))[0] == "AA"
    assert sorted((o.placer_number, o.status) for o in door.orders()) == [("PL1", OrderStatus.CANCELLED),
                                                                   ("PL2", OrderStatus.CANCELLED)]


def test_a_resent_nw_is_accepted_once(door: Door) -> None:
    assert msa(door.send(nw("O1", "PL1", "ACC1")))[0] == "AA"
    assert msa(door.send(nw("O1", "PL1", "ACC1")))[0] == "AA"
    assert len(door.orders()) == 1


@pytest.mark.parametrize(("body", "code", "location", "words"), [
    (nw("X", "PL1", "ACC1", modality="MR"), "205", "ORC^1^2", "already exists"),
    (nw("X", "PL9", "ACC1"), "205", "OBR^1^18", "already belongs to order PL1"),
    (message("ORM^O01", "X", PID, orc("XO", "PL9"), obr("PL9", "ACC9")), "204", "ORC^1^2", "PL9"),
    (message("ORM^O01", "X", PID, orc("XO", "PL2"), obr("PL2", "ACC1")), "205", "OBR^1^18", "belongs to order PL1"),
    (message("ORM^O01", "X", orc("CA", "PL9")), "204", "ORC^1^2", "no order with placer number PL9"),
    (message("ORM^O01", "X", PID, orc("XX", "PL9"), obr("PL9", "ACC9")), "103", "ORC^1^1", "'XX'"),
    (message("ORM^O01", "X", PID, orc("", "PL9"), obr("PL9", "ACC9")), "101", "ORC^1^1", "ORC-1"),
    (nw("X", "PL9", "ACC9", scheduled="20261345"), "102", "OBR^1^36", "'20261345'"),
    (nw("X", "PL9", "ACC9", scheduled="tomorrow"), "102", "OBR^1^36", "date/time"),
    (nw("X", "PL9", "ACC9", priority="Q"), "103", "OBR^1^27^1^6", "priority 'Q'"),
    (nw("X", "PL9", ""), "101", "OBR^1^18", "accession number"),
    (nw("X", "PL9", "A" * 17), "104", "OBR^1^18", "longer than 16"),
    (nw("X", "PL9", "ACC9", station="S" * 17), "104", "OBR^1^21", "station ae"),
    (message("ORM^O01", "X", PV1, orc("NW", "PL9"), obr("PL9", "ACC9")), "100", "PID", "no PID segment"),
    (message("ORM^O01", "X", PID, obr("PL9", "ACC9")), "100", "ORC", "no ORC segment"),
    (message("ORM^O01", "X", PID, "ORC|NW|PL9", obr("PL9", "ACC9"), "ORC|NW|PL9", obr("PL9", "ACC8")),
     "205", "ORC^2^2", "twice"),
    # the second order is wrong: the first is not applied either
    (message("ORM^O01", "X", PID, orc("NW", "PL8"), obr("PL8", "ACC8"), orc("NW", "PL9"),
             obr("PL9", "ACC9", scheduled="202603021")), "102", "OBR^2^36", "'202603021'"),
])
def test_a_wrong_order_gets_ae_and_changes_nothing(door: Door, body: str, code: str, location: str,
                                                   words: str) -> None:
    assert msa(door.send(nw("O1", "PL1", "ACC1")))[0] == "AA"
    assert msa(door.send(nw("O2", "PL2", "ACC2")))[0] == "AA"
    before = door.state()

    ack = door.send(body)

    assert msa(ack)[:2] == ("AE", "X")
    assert words in msa(ack)[2]
    assert err(ack) == (location, code, "E", msa(ack)[2])
    assert door.state() == before


def test_several_orders_in_one_message(door: Door) -> None:
    ack = door.send(message("ORM^O01", "O1", PID, orc("NW", "PL1"), obr("PL1", "ACC1", modality="CT"),
                            orc("NW", "PL2", priority="S"), obr("PL2", "ACC2", modality="MR")))

    assert msa(ack)[0] == "AA"
    assert [(o.placer_number, o.accession_number, o.modality, o.priority) for o in door.orders()] == [
        ("PL1", "ACC1", "CT", Priority.ROUTINE), ("PL2", "ACC2", "MR", Priority.STAT)]


def test_a_refusal_after_an_applied_order_names_it(door: Door) -> None:
    """Only the index can tell that the second order's accession is taken; the first order
    of the message is then already stored, and the AE says so."""
    assert msa(door.send(nw("O0", "PL0", "ACC0")))[0] == "AA"

    ack = door.send(message("ORM^O01", "O1", PID, orc("NW", "PL1"), obr("PL1", "ACC1"),
                            orc("NW", "PL2"), obr("PL2", "ACC0")))

    assert msa(ack)[0] == "AE"
    assert err(ack)[:2] == ("OBR^2^18", "205")
    assert "applied before it: order PL1 (new)" in msa(ack)[2]
    assert [o.placer_number for o in door.orders()] == ["PL0", "PL1"]


def test_the_field_locations_are_configurable(start_door: StartDoor) -> None:
    door = start_door(ris={"order_fields": {"accession_number": ["OBR-20"], "modality": ["OBR-44.1"],
                                            "referring_physician": ["PV1-8"]}})
    body = obr("PL1", "IGNORED").split("|")
    body[20] = "ACC-20"
    body += [""] * 7 + ["DX^Digital radiography"]  # OBR-44
    ack = door.send(message("ORM^O01", "O1", PID, PV1, orc("NW", "PL1"), "|".join(body)))

    assert msa(ack)[0] == "AA", msa(ack)
    order = door.order("PL1")
    assert order is not None
    assert (order.accession_number, order.modality, order.referring_physician) == ("ACC-20", "DX", "Lege^Lise")
