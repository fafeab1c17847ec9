"""The MLLP listener: connections stay open across messages, every frame gets exactly one ACK
(garbage, overlong frames and failures included), TCP may split or join frames, and every
message is recorded in hl7_messages as it arrived."""

from __future__ import annotations

import pytest

from twinpacs.config import LimitSettings
from twinpacs.errors import ConfigurationError
from tests.hl7.conftest import PID, Door, LoopThread, StartDoor, err, message, msa, nw

A01 = message("ADT^A01", "G1", PID)
MAX_MESSAGE = LimitSettings().hl7_max_message_bytes


def test_one_connection_many_messages_with_a_failure_between(door: Door) -> None:
    client = door.connect()
    other = door.connect()  # a second sender at the same time

    acks = [client.send(A01), client.send(message("ADT^A01", "B1", "EVN|A01")), other.send(nw("O2", "PL2", "ACC2")),
            client.send(nw("O1", "PL1", "ACC1"))]

    assert [msa(a)[:2] for a in acks] == [("AA", "G1"), ("AE", "B1"), ("AA", "O2"), ("AA", "O1")]
    assert door.patient("P100", "HOSP") is not None
    assert sorted(o.placer_number for o in door.orders()) == ["PL1", "PL2"]
    assert [e.control_id for e in door.log()] == ["G1", "B1", "O2", "O1"]


@pytest.mark.parametrize(("frame", "words", "stored"), [
    (b"hello\x1c\x0d", "does not begin with <VT>", "hello"),
    (b"\x0bnot hl7 at all\x1c\x0d", "does not begin with an MSH segment", "not hl7 at all"),
    (b"\x0b\x1c\x0d", "empty", ""),
    (b"\x0b\x00\xff\xfe MSH\x1c\x0d", "does not begin with an MSH segment", "\\x00\xff\xfe MSH"),
    (b"\x0bMSH|^~\\&|RIS\x1c\x0d", "", "MSH|^~\\&|RIS"),
    (b"\x0bMSH|^~\\&|||||||ADT^A01|C1|P|2.5\rMSH|^~\\&|||||||ADT^A01|C2|P|2.5\x1c\x0d", "more than one message",
     "MSH|^~\\&|||||||ADT^A01|C1|P|2.5\rMSH|^~\\&|||||||ADT^A01|C2|P|2.5"),
])
def test_garbage_gets_ar_and_the_connection_carries_on(door: Door, frame: bytes, words: str, stored: str) -> None:
    client = door.connect()
    client.send_raw(frame)

    ack = client.read_ack()

    assert msa(ack)[0] == "AR"
    assert words in msa(ack)[2]
    assert err(ack)[1:3] in (("100", "E"), ("203", "E"))
    assert door.state() == ([], [])
    assert (door.log()[-1].ack_code, door.log()[-1].raw) == ("AR", stored)
    assert msa(client.send(A01))[:2] == ("AA", "G1")


def test_tcp_may_split_and_join_frames(door: Door) -> None:
    client = door.connect()
    joined = b"".join(b"\x0b" + message("ADT^A01", f"J{n}", PID).encode() + b"\x1c\x0d\r\n" for n in range(3))
    client.send_raw(joined)  # three frames in one write, a line break after each
    assert [msa(client.read_ack())[1] for _ in range(3)] == ["J0", "J1", "J2"]

    frame = b"\x0b" + nw("S1", "PL1", "ACC1").encode() + b"\x1c\x0d"
    for start in range(0, len(frame), 7):  # one frame in many writes
        client.send_raw(frame[start:start + 7])
    assert msa(client.read_ack())[:2] == ("AA", "S1")
    assert door.order("PL1") is not None


def test_an_overlong_frame_gets_one_ar(door: Door) -> None:
    client = door.connect()
    client.send_raw(b"\x0b" + message("ADT^A01", "BIG", PID, "NTE|1||" + "x" * MAX_MESSAGE).encode() + b"\x1c\x0d")

    ack = client.read_ack()

    assert msa(ack)[0] == "AR" and "longer than" in msa(ack)[2]
    assert door.patient("P100", "HOSP") is None
    assert msa(client.send(A01))[:2] == ("AA", "G1")  # the next answer is the next message's


def test_every_message_is_recorded_as_received(door: Door) -> None:
    client = door.connect()
    local = client.sock.getsockname()
    refused = message("ADT^A99", "R1", PID)
    latin = message("ADT^A08", "L1", "PID|1||P5||Østerås^Åse").encode("latin-1")

    client.send(A01), client.send(refused), client.send(latin)

    entries = door.log()
    assert [(e.remote, e.control_id, e.message_type, e.ack_code) for e in entries] == [
        (f"{local[0]}:{local[1]}", "G1", "ADT^A01", "AA"), (f"{local[0]}:{local[1]}", "R1", "ADT^A99", "AR"),
        (f"{local[0]}:{local[1]}", "L1", "ADT^A08", "AA")]
    assert (entries[0].raw, entries[0].error) == (A01, "")
    assert entries[1].raw == refused
    assert entries[1].error.startswith("201 Unsupported event code at MSH^1^9^1^2: ADT^A99 is not supported")
    assert entries[2].raw == latin.decode("latin-1")
    patient = door.patient("P5")
    assert patient is not None and patient.name == "Østerås^Åse"


def test_a_sender_closing_inside_a_frame_changes_nothing(door: Door) -> None:
    client = door.connect()
    client.send_raw(b"\x0b" + A01.encode())  # no end of block
    client.close()

    assert msa(door.send(nw("O1", "PL1", "ACC1")))[0] == "AA"  # the listener carries on
    assert door.patient("P100", "HOSP") is None
    assert [e.control_id for e in door.log()] == ["O1"]


def test_close_ends_idle_connections(door: Door, loop: LoopThread) -> None:
    client = door.connect()
    assert msa(client.send(A01))[0] == "AA"

    loop.run(door.listener.close())

    assert client.closed_by_peer()


def test_a_bad_time_zone_or_a_taken_port_stops_the_start(door: Door, start_door: StartDoor) -> None:
    with pytest.raises(ConfigurationError, match="'Mars/Olympus' is not an IANA time zone"):
        start_door(hl7={"timezone": "Mars/Olympus"})
    with pytest.raises(ConfigurationError, match=f"cannot listen on 127.0.0.1:{door.port}"):
        start_door(hl7={"port": door.port})
