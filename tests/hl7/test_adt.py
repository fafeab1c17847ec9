"""ADT over MLLP: A01/A04/A08 register and update the RIS's patient, A40 merges; wrong
content gets AE, what cannot be processed AR, each with an ERR saying what and where, and
neither changes anything."""

from __future__ import annotations

import pytest

from twinpacs.core.ris import Patient
from tests.hl7.conftest import PID, Door, err, message, msa, nw


def test_a01_registers_the_patient_in_dicom_forms(door: Door) -> None:
    ack = door.send(message("ADT^A01^ADT_A01", "C1", "EVN|A01|20260301120000", PID, "PV1|1|I"))

    assert msa(ack) == ("AA", "C1", "")
    assert ack["MSH.F9.R1.C1"] == "ACK" and ack["MSH.F9.R1.C2"] == "A01"
    assert ack["MSH.F3"] == "TWINPACS" and ack["MSH.F5"] == "RIS"  # sender and receiver swapped
    assert "ERR" not in str(ack)
    # XPN family^given^middle^suffix^prefix becomes PN Family^Given^Middle^Prefix^Suffix
    assert door.patient("P100", "HOSP") == Patient("P100", "HOSP", "Nordmann^Ola^Kari^Dr^Jr", "19800131", "M")


def test_a04_then_a08_updates_the_same_patient(door: Door) -> None:
    assert msa(door.send(message("ADT^A04", "C1", "PID|1||P7^^^HOSP||Feil^Navn||19700101|U")))[0] == "AA"
    assert door.patient("P7", "HOSP") == Patient("P7", "HOSP", "Feil^Navn", "19700101", "")

    ack = door.send(message("ADT^A08", "C2", "PID|1||P7^^^HOSP||Riktig^Navn^^^^||19700102120000|F"))

    assert msa(ack)[0] == "AA"
    assert door.patient("P7", "HOSP") == Patient("P7", "HOSP", "Riktig^Navn", "19700102", "F")
    assert len(door.state()[1]) == 1


@pytest.mark.parametrize(("segments", "code", "location", "words"), [
    (["EVN|A01", "PV1|1|I"], "100", "PID", "no PID segment"),
    (["PID|1||^^^HOSP||Doe^John||19800101|M"], "101", "PID^1^3", "PID-3"),
    (["PID|1||P1||Doe^John||19801340|M"], "102", "PID^1^7", "19801340"),
    (["PID|1||P1||Doe^John||1980|M"], "102", "PID^1^7", "birth date"),
    (["PID|1||P1||Doe^John||19800101|Q"], "103", "PID^1^8", "'Q'"),
    (["PID|1||" + "9" * 65 + "||Doe^John"], "104", "PID^1^3^1^1", "longer than 64"),
])
def test_wrong_content_gets_ae_with_the_error_and_changes_nothing(
        door: Door, segments: list[str], code: str, location: str, words: str) -> None:
    before = door.state()

    ack = door.send(message("ADT^A01", "BAD1", *segments))

    assert msa(ack)[:2] == ("AE", "BAD1")
    assert words in msa(ack)[2]
    assert err(ack) == (location, code, "E", msa(ack)[2])
    assert door.state() == before
    assert door.log()[-1].ack_code == "AE" and door.log()[-1].error.startswith(code)


@pytest.mark.parametrize(("kind", "version", "code", "location", "words"), [
    ("ADT^A99", "2.5", "201", "MSH^1^9^1^2", "ADT^A99 is not supported"),
    ("ADT", "2.5", "201", "MSH^1^9^1^2", "no trigger event"),
    ("SIU^S12", "2.5", "200", "MSH^1^9^1^1", "message type SIU"),
    ("ADT^A01", "3.0", "203", "MSH^1^12", "version '3.0'"),
])
def test_what_cannot_be_processed_gets_ar_and_changes_nothing(
        door: Door, kind: str, version: str, code: str, location: str, words: str) -> None:
    before = door.state()

    ack = door.send(message(kind, "REJ1", PID, version=version))

    assert msa(ack)[:2] == ("AR", "REJ1")
    assert words in msa(ack)[2]
    assert err(ack)[:3] == (location, code, "E")
    assert door.state() == before
    assert door.patient("P100", "HOSP") is None


def test_a40_merges_the_prior_patient_into_the_surviving_one(door: Door) -> None:
    """The prior identifier's order is found under the surviving patient afterwards (the
    merge itself is index/merge.py's; this is the door calling through to it)."""
    old_pid = "PID|1||OLD1^^^HOSP||Nordmann^Ola||19800131|M"
    assert msa(door.send(message("ORM^O01", "O1", old_pid, "ORC|NW|PL1", "OBR|1|PL1||||||||||||||||ACC1")))[0] == "AA"
    assert msa(door.send(message("ADT^A01", "A1", PID)))[0] == "AA"

    ack = door.send(message("ADT^A40^ADT_A39", "M1", "EVN|A40", PID, "MRG|OLD1^^^HOSP"))

    assert msa(ack) == ("AA", "M1", "")
    assert [o.placer_number for o in door.site.ris.orders(patient_id="P100")] == ["PL1"]
    assert door.site.ris.orders(patient_id="OLD1") == []


@pytest.mark.parametrize(("segments", "code", "location"), [
    ([PID], "100", "MRG"),
    (["MRG|OLD1"], "100", "PID"),
    ([PID, "MRG|^^^HOSP"], "101", "MRG^1^1"),
    ([PID, "MRG|OLD1", "PID|2||P200"], "100", "MRG"),
])
def test_a40_without_both_identifiers_changes_nothing(door: Door, segments: list[str], code: str,
                                                      location: str) -> None:
    assert msa(door.send(nw("O1", "PL1", "ACC1")))[0] == "AA"
    before = door.state()

    ack = door.send(message("ADT^A40", "M1", *segments))

    assert msa(ack)[0] == "AE"
    assert err(ack)[:2] == (location, code)
    assert door.state() == before
