"""A site with its HL7 door listening on a free loopback port (its asyncio loop in a thread of
the test process), a plain-socket MLLP client that frames bytes itself, and HL7 messages."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hl7
import pytest

from twinpacs.app import Site, build_site
from twinpacs.config import load_settings
from twinpacs.core.ris import Order, Patient
from twinpacs.hl7 import Hl7Listener, start_hl7
from twinpacs.index.hl7_log import Hl7Log, Hl7Record
from tests.backend import backend_url
from tests.loops import LoopThread

HOST = "127.0.0.1"
ZONE = "Europe/Oslo"


class Mllp:
    """A blocking MLLP client over a real socket: frames what it is given (or sends raw bytes)
    and reads whole acknowledgements, however TCP splits them."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=30)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_ack(self) -> hl7.Message:
        while b"\x1c\x0d" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"connection closed; received {self.buffer!r}")
            self.buffer += chunk
        frame, self.buffer = self.buffer.split(b"\x1c\x0d", 1)
        assert frame.startswith(b"\x0b"), frame
        return hl7.parse(frame[1:].decode("utf-8"))

    def send(self, message: str | bytes) -> hl7.Message:
        data = message.encode("utf-8") if isinstance(message, str) else message
        self.send_raw(b"\x0b" + data + b"\x1c\x0d")
        return self.read_ack()

    def closed_by_peer(self) -> bool:
        self.sock.settimeout(10)
        return self.sock.recv(1) == b""


@dataclass
class Door:
    site: Site
    listener: Hl7Listener
    clients: list[Mllp] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.listener.port

    def connect(self) -> Mllp:
        self.clients.append(Mllp(self.port))
        return self.clients[-1]

    def send(self, message: str | bytes) -> hl7.Message:
        """One message on a connection of its own."""
        client = self.connect()
        try:
            return client.send(message)
        finally:
            client.close()

    def orders(self) -> list[Order]:
        return self.site.ris.orders()

    def order(self, placer: str) -> Order | None:
        return self.site.ris.index.order_by_placer(placer)

    def patient(self, patient_id: str, issuer: str = "") -> Patient | None:
        return self.site.ris.index.patient(patient_id, issuer)

    def log(self) -> list[Hl7Record]:
        """hl7_messages, oldest first."""
        return list(reversed(Hl7Log(self.site.index.db).recent()))

    def state(self) -> tuple[list[Order], list[Any]]:
        """Orders and RIS patients, to show that a refused message changed nothing."""
        from twinpacs.index.schema import ris_patients

        with self.site.index.db.read() as conn:
            patients = [tuple(r) for r in conn.execute(ris_patients.select().order_by(ris_patients.c.id))]
        return self.orders(), patients


StartDoor = Callable[..., Door]


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.stop()


@pytest.fixture
def start_door(tmp_path: Path, loop: LoopThread) -> Iterator[StartDoor]:
    """Build a site (settings overrides merged in) and start its HL7 listener on port 0."""
    doors: list[Door] = []

    def start(**overrides: Any) -> Door:
        data_dir = tmp_path / f"site{len(doors)}"
        settings: dict[str, Any] = {"site": {"data_dir": data_dir, "ae_title": "TWINPACS"},
                                    "database": {"url": backend_url(data_dir)},
                                    "hl7": {"port": 0, "timezone": ZONE}}
        for section, values in overrides.items():
            settings.setdefault(section, {}).update(values)
        site = build_site(load_settings(overrides=settings))
        try:
            doors.append(Door(site, loop.run(start_hl7(site))))
        except BaseException:
            site.close()
            raise
        return doors[-1]

    yield start
    for door in doors:
        for client in door.clients:
            client.close()
        loop.run(door.listener.close())
        door.site.close()


@pytest.fixture
def door(start_door: StartDoor) -> Door:
    return start_door(ris={"procedure_codes": {"CTCHEST": {"code": "24627-2", "scheme": "LN",
                                                           "meaning": "CT Chest"}}})


# -- messages -----------------------------------------------------------------------------

def message(kind: str, control_id: str, *segments: str, version: str = "2.5") -> str:
    msh = f"MSH|^~\\&|RIS|HOSP|TWINPACS|HOSP|20260301120000||{kind}|{control_id}|P|{version}"
    return "\r".join([msh, *segments])


PID = "PID|1||P100^^^HOSP^MR||Nordmann^Ola^Kari^Jr^Dr||19800131|M"
PV1 = "PV1|1|O||||||0077^Lege^Lise"


def orc(control: str, placer: str, filler: str = "", priority: str = "") -> str:
    return f"ORC|{control}|{placer}^RIS|{filler}||||^^^^^{priority}"


def obr(placer: str, accession: str, *, procedure: str = "CTCHEST^CT chest^L", modality: str = "CT",
        scheduled: str = "20260302093000", reason: str = "R07.4^Chest pain^I10",
        clinical: str = "Cough for 3 weeks", referring: str = "0042^Doktor^Dora", station: str = "CT1",
        priority: str = "") -> str:
    fields = [""] * 37
    fields[0], fields[1], fields[2], fields[4] = "OBR", "1", f"{placer}^RIS", procedure
    fields[13], fields[16], fields[18], fields[21] = clinical, referring, accession, station
    fields[24], fields[27], fields[31], fields[36] = modality, f"^^^^^{priority}", reason, scheduled
    return "|".join(fields)


def nw(control_id: str, placer: str, accession: str, **obr_fields: Any) -> str:
    return message("ORM^O01", control_id, PID, PV1, orc("NW", placer), obr(placer, accession, **obr_fields))


def msa(ack: hl7.Message) -> tuple[str, str, str]:
    """MSA-1 (code), MSA-2 (the acknowledged control ID), MSA-3 (the text)."""
    return ack["MSA.F1"], ack["MSA.F2"], ack["MSA.F3"]


def err(ack: hl7.Message) -> tuple[str, str, str, str]:
    """ERR-2 (location, as SEG^n^field...), ERR-3.1 (code), ERR-4 (severity), ERR-8 (message)."""
    return str(ack.segment("ERR")(2)), ack["ERR.F3.R1.C1"], ack["ERR.F4"], ack["ERR.F8"]
