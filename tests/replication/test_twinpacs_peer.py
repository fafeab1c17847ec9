"""Replication between two live twinpacs sites over HTTP: STOW-RS, confirmation by content hash."""

from __future__ import annotations

import httpx

from twinpacs.core.archive import StoreStatus

from .conftest import HOST, Sites, free_port, held, objects, rows, states, twinpacs_peer, wait_for


def test_a_store_reaches_the_peer_and_is_confirmed_by_hash(sites: Sites) -> None:
    port_a, port_b = free_port(), free_port()
    a = sites.build("A", [twinpacs_peer("B", port_b)])
    b = sites.build("B", [twinpacs_peer("A", port_a)])
    sites.serve(a, port_a)
    sites.serve(b, port_b)
    for site in (a, b):
        site.replication.start()  # type: ignore[union-attr]

    for data in objects(7):
        assert a.archive.store(data, "TEST").status is StoreStatus.STORED
    wait_for(lambda: states(a) == {"confirmed": 7}, what="A's 7 rows confirmed")
    assert held(b) == held(a)
    # What arrived by replication is not sent back: its row at B starts confirmed, no attempt.
    assert [(r["peer"], r["state"], r["attempts"]) for r in rows(b)] == [("A", "confirmed", 0)] * 7

    # The other direction: a store at B goes to A, and is not queued back to B by A.
    (extra,) = objects(1, seed=2)
    b.archive.store(extra, "TEST")
    wait_for(lambda: states(b) == {"confirmed": 8}, what="B's own row confirmed")
    assert held(a) == held(b) and len(held(a)) == 8
    assert states(a) == {"confirmed": 8} and rows(a)[-1]["attempts"] == 0
    assert a.archive.figures()["duplicates_received"] == b.archive.figures()["duplicates_received"] == 0

    queue = httpx.get(f"http://{HOST}:{port_a}/api/replication/queue").json()
    assert queue["peers"] == [{"name": "B", "pending": 0, "confirmed": 8, "unverified": 0, "failed": 0,
                               "oldest_pending_age_s": 0.0, "attempts": 7, "last_error": ""}]


def test_origin_header_is_honoured_only_for_a_configured_peer(sites: Sites) -> None:
    """A standby accepts a replicated object from its peer, and nobody else's claim to be one."""
    b = sites.build("B", [twinpacs_peer("A", free_port())])
    b.roles.set("standby", "A")
    http = sites.serve(b)
    from tests.web.conftest import stow_body

    first, second = objects(2, seed=3)
    url = f"http://{HOST}:{http.port}/dicom-web/studies"
    body, headers = stow_body([first])
    assert httpx.post(url, content=body, headers={**headers, "X-Twinpacs-Origin": "A"}).status_code == 200
    body, headers = stow_body([second])
    assert httpx.post(url, content=body, headers={**headers, "X-Twinpacs-Origin": "EVIL"}).status_code == 503
    assert len(held(b)) == 1 and states(b) == {"confirmed": 1}


def test_hashes_are_read_back_from_the_stored_bytes(sites: Sites) -> None:
    b = sites.build("B", [])
    http = sites.serve(b)
    one, two = objects(2, seed=4)
    b.archive.store(one, "TEST")
    b.archive.store(two, "TEST")
    uids = sorted(held(b))
    # Damage one stored file behind the index's back: its hash must no longer be given.
    damaged = b.archive.blobs.path(held(b)[uids[0]])
    assert damaged is not None
    damaged.write_bytes(damaged.read_bytes()[:-4] + b"\0\0\0\0")
    answer = httpx.post(f"http://{HOST}:{http.port}/api/replication/hashes",
                        json={"uids": [*uids, "1.2.3.999"]}).json()
    assert answer == {"hashes": {uids[0]: None, uids[1]: held(b)[uids[1]], "1.2.3.999": None}}
    bad = httpx.post(f"http://{HOST}:{http.port}/api/replication/hashes", json={"uids": "1.2"})
    assert bad.status_code == 400
