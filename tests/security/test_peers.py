"""Two sites with the secure default on both, each sending the other its peer token: images
replicate and are confirmed, RIS changes and role changes pass; without the token the peer
refuses (401) and the objects stay pending, never lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from twinpacs.app import Site, build_site
from twinpacs.config import PeerSettings, PrefetchSourceSettings, load_settings
from twinpacs.core.archive import StoreStatus
from twinpacs.peer_control import HttpPeerControl, PeerUnreachable
from twinpacs.peer_ris import HttpRisPeer
from twinpacs.prefetch_sources import DicomwebSource, SourceError
from tests.replication.conftest import FAST, HOST, free_port, held, objects, rows, states, wait_for
from tests.served import ServedApp

from .conftest import TOKENS, secure_settings

TOKEN_TO_A, TOKEN_TO_B = "a" * 43, "b" * 43  # what B sends to A, what A sends to B


def _peer(name: str, port: int, token: str) -> dict[str, Any]:
    return {"name": name, "dicomweb_url": f"http://{HOST}:{port}/dicom-web", "token": token}


def _site(root: Path, name: str, peer: dict[str, Any], accepts: str) -> Site:
    overrides = secure_settings(root, name, peers=[peer], replication=FAST,
                                security={"api_tokens": [{"name": peer["name"], "token": accepts, "role": "service"}]})
    return build_site(load_settings(overrides=overrides))


@pytest.fixture
def pair(tmp_path: Path) -> Any:
    port_a, port_b = free_port(), free_port()
    a = _site(tmp_path, "A", _peer("B", port_b, TOKEN_TO_B), accepts=TOKEN_TO_A)
    b = _site(tmp_path, "B", _peer("A", port_a, TOKEN_TO_A), accepts=TOKEN_TO_B)
    servers = [ServedApp(a, port_a), ServedApp(b, port_b)]
    yield a, b, port_b
    for site in (a, b):
        for service in site.background:
            service.stop()
    for server in servers:
        server.stop()
    for site in (a, b):
        site.close()


def test_sites_with_peer_tokens_replicate_with_the_door_closed(pair: Any) -> None:
    a, b, _ = pair
    for site in (a, b):
        site.replication.start()
    for data in objects(6, seed=21):
        assert a.archive.store(data, "TEST").status is StoreStatus.STORED
    wait_for(lambda: states(a) == {"confirmed": 6}, what="A's rows confirmed by B's hashes")
    assert held(b) == held(a)
    (extra,) = objects(1, seed=22)
    b.archive.store(extra, "TEST")
    wait_for(lambda: states(b) == {"confirmed": 7}, what="B's row confirmed by A")


def test_ris_sync_and_role_control_carry_the_token(pair: Any) -> None:
    a, _, _ = pair
    peer_b = next(p for p in a.settings.peers if p.name == "B")
    with_token = HttpRisPeer(peer_b, "A")
    assert with_token.send([]).startswith("HTTP 400")  # past the door: the handler itself wants changes
    without = HttpRisPeer(PeerSettings(**{**peer_b.model_dump(), "token": ""}), "A")
    assert without.send([]).startswith("HTTP 401")
    with_token.close()
    without.close()
    HttpPeerControl([peer_b]).set_role("B", "standby", "A")  # accepted: service may change roles
    with pytest.raises(PeerUnreachable, match="401"):
        HttpPeerControl([PeerSettings(**{**peer_b.model_dump(), "token": ""})]).set_role("B", "standby", "A")


def test_without_the_token_the_peer_refuses_and_objects_wait(tmp_path: Path) -> None:
    port_b = free_port()
    a = _site(tmp_path, "A", _peer("B", port_b, "wrong".ljust(40, "!")), accepts=TOKEN_TO_A)
    b = _site(tmp_path, "B", _peer("A", free_port(), TOKEN_TO_A), accepts=TOKEN_TO_B)
    server = ServedApp(b, port_b)
    try:
        a.replication.start()  # type: ignore[union-attr]
        a.archive.store(objects(1, seed=23)[0], "TEST")
        wait_for(lambda: any("401" in r["last_error"] for r in rows(a)), what="B's refusal noted")
        assert states(a) == {"pending": 1} and held(b) == {}
    finally:
        for service in a.background:
            service.stop()
        server.stop()
        a.close()
        b.close()


def test_a_dicomweb_prefetch_source_is_asked_with_its_token(served: ServedApp, site: Site, tmp_path: Path) -> None:
    for data in objects(1, seed=24, patient="PRI"):
        site.archive.store(data, "TEST")
    here = build_site(load_settings(overrides=secure_settings(tmp_path, "HERE")))
    url = f"{served.url}/dicom-web"
    try:
        with_token = DicomwebSource(PrefetchSourceSettings(name="old", kind="dicomweb", dicomweb_url=url,
                                                           token=TOKENS["service"]), here.archive)
        (found,) = with_token.find("PRI24", series_details=False)
        assert with_token.fetch(found) == "WADO-RS: 1 received"
        assert len(held(here)) == 1
        without = DicomwebSource(PrefetchSourceSettings(name="old", kind="dicomweb", dicomweb_url=url), here.archive)
        with pytest.raises(SourceError, match="401"):
            without.find("PRI24", series_details=False)
        with_token.close()
        without.close()
    finally:
        here.close()
