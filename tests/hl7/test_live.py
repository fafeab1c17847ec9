"""`twinpacs serve --hl7-port 0` as a real process: the ready line names the HL7 port, python-hl7's
own asyncio MLLP client places an order on it, and the order is in the site's index."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import hl7
from hl7.mllp import open_hl7_connection

from twinpacs.core.ris import Priority
from twinpacs.index.ris import SqlRis
from twinpacs.index.sql import SqlIndex
from tests.backend import backend_url
from tests.e2e.live import LiveSite
from tests.hl7.conftest import PID, PV1, message, nw, obr, orc

HL7_READY = re.compile(r"twinpacs ready: .*, HL7 127\.0\.0\.1:(\d+)")


async def exchange(port: int, *messages: str) -> list[hl7.Message]:
    reader, writer = await open_hl7_connection("127.0.0.1", port)
    try:
        acks = []
        for text in messages:
            writer.writemessage(hl7.parse(text))
            await writer.drain()
            acks.append(await asyncio.wait_for(reader.readmessage(), 30))
        return acks
    finally:
        writer.close()
        await writer.wait_closed()


def test_serve_takes_orders_over_mllp(tmp_path: Path) -> None:
    site = LiveSite(tmp_path / "site", "TWINPACS", ("--hl7-port", "0"))
    site.start()
    try:
        found = next(m for m in map(HL7_READY.search, site.log) if m)
        stat = message("ORM^O01", "L2", PID, PV1, orc("NW", "PL2", priority="S"), obr("PL2", "ACC2"))

        acks = asyncio.run(exchange(int(found[1]), nw("L1", "PL1", "ACC1"), stat))

        assert [(a["MSA.F1"], a["MSA.F2"]) for a in acks] == [("AA", "L1"), ("AA", "L2")]
        assert site.stop() == 0
    finally:
        site.kill()
    index = SqlIndex(backend_url(site.data_dir))
    try:
        ris = SqlRis(index.db)
        orders = {o.placer_number: o for o in ris.orders()}
        assert sorted(orders) == ["PL1", "PL2"]
        assert (orders["PL2"].accession_number, orders["PL2"].priority) == ("ACC2", Priority.STAT)
    finally:
        index.close()
