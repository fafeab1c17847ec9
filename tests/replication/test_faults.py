"""A peer that is down, answers garbage, or dies mid-batch: nothing is counted as confirmed that
was not, nothing is lost, the queue resumes by itself, and the reason is in the row."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from .conftest import HOST, Proxy, Sites, free_port, held, objects, rows, states, twinpacs_peer, wait_for


def as_utc(rows_: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """SQLite gives naive datetimes back; they are UTC."""
    return [{k: v.replace(tzinfo=timezone.utc) if hasattr(v, "tzinfo") and v.tzinfo is None else v
             for k, v in r.items()} for r in rows_]


def test_peer_down_retries_with_backoff_then_resumes_by_itself(sites: Sites) -> None:
    port_b = free_port()  # nothing listens there yet
    a = sites.build("A", [twinpacs_peer("B", port_b)], retry_initial_s=0.1, retry_max_s=0.4)
    a.replication.start()  # type: ignore[union-attr]
    for data in objects(3, seed=10):
        a.archive.store(data, "TEST")

    wait_for(lambda: all(r["attempts"] >= 4 for r in rows(a)), what="four failed attempts each")
    for row in as_utc(rows(a)):
        assert row["state"] == "pending" and "ConnectError" in row["last_error"]
        # The delay after attempt n is min(max, initial * 2**(n-1)), jittered down by at most a fifth.
        delay = (row["next_attempt_at"] - row["updated_at"]).total_seconds()
        expected = min(0.4, 0.1 * 2 ** (row["attempts"] - 1))
        assert 0.8 * expected - 0.001 <= delay <= expected + 0.001, (row["attempts"], delay)
    assert states(a) == {"pending": 3}

    b = sites.build("B", [twinpacs_peer("A", free_port())])
    sites.serve(b, port_b)
    wait_for(lambda: states(a) == {"confirmed": 3}, what="A's rows confirmed once B is up")
    assert held(b) == held(a) and all(r["last_error"] == "" for r in rows(a))


class Liar(BaseHTTPRequestHandler):
    """A peer answering 200 to everything: with junk, or with hashes that are not ours."""

    mode = "junk"

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.mode == "junk" or not self.path.endswith("/hashes"):
            answer = b"<html>all good</html>"
        else:
            answer = json.dumps({"hashes": {uid: "0" * 64 for uid in json.loads(body)["uids"]}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=["junk", "wrong-hashes"])
def liar(request: pytest.FixtureRequest) -> Iterator[int]:
    handler = type("Handler", (Liar,), {"mode": request.param})
    server = ThreadingHTTPServer((HOST, 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_a_peer_answering_garbage_never_confirms(sites: Sites, liar: int) -> None:
    a = sites.build("A", [twinpacs_peer("B", liar)])
    a.replication.start()  # type: ignore[union-attr]
    for data in objects(2, seed=11):
        a.archive.store(data, "TEST")
    wait_for(lambda: all(r["attempts"] >= 3 for r in rows(a)), what="three attempts each")
    assert states(a) == {"pending": 2}
    for row in rows(a):
        assert "something other than {hashes" in row["last_error"] or "other content" in row["last_error"]


def test_give_up_is_visible_and_retry_failed_requeues(sites: Sites) -> None:
    port_a, port_b = free_port(), free_port()
    a = sites.build("A", [twinpacs_peer("B", port_b)], give_up_after=2)
    sites.serve(a, port_a)
    a.replication.start()  # type: ignore[union-attr]
    for data in objects(2, seed=12):
        a.archive.store(data, "TEST")
    wait_for(lambda: states(a) == {"failed": 2}, what="both rows failed")
    for row in rows(a):
        assert row["attempts"] == 2 and row["last_error"].startswith("gave up after 2 attempts: ConnectError")
    api = f"http://{HOST}:{port_a}/api/replication"
    (peer,) = httpx.get(f"{api}/queue").json()["peers"]
    assert (peer["failed"], peer["pending"]) == (2, 0) and peer["last_error"].startswith("gave up")
    assert states(a) == {"failed": 2}  # given up stays given up: no hot loop

    b = sites.build("B", [twinpacs_peer("A", port_a)])
    sites.serve(b, port_b)
    site_url = f"http://{HOST}:{port_a}"
    status = _cli("sync", "status", "--url", site_url, "--json")
    assert status.returncode == 1 and json.loads(status.stdout)["peers"][0]["failed"] == 2
    retried = _cli("sync", "retry", "--peer", "B", "--url", site_url, "--json")
    assert json.loads(retried.stdout) == {"peer": "B", "requeued": 2}
    wait_for(lambda: states(a) == {"confirmed": 2}, what="requeued rows confirmed")
    assert httpx.post(f"{api}/retry", json={"peer": "nobody"}).status_code == 404


def test_peer_killed_mid_batch_and_restarted_ends_confirmed_exactly_once(sites: Sites) -> None:
    b = sites.build("B", [twinpacs_peer("A", free_port())])
    http = sites.serve(b)
    proxy = Proxy(http.port)
    a = sites.build("A", [twinpacs_peer("B", proxy.port)])  # batches of 5
    for data in objects(12, seed=13):
        a.archive.store(data, "TEST")
    assert states(a) == {"pending": 12}

    stored, release = threading.Event(), threading.Event()
    store_many = b.archive.store_many

    def store_then_hang(datas: list[bytes], *args: Any) -> list[Any]:
        results = store_many(datas, *args)
        if len(held(b)) == 10:  # the second batch is durable at B, its answer not yet sent
            stored.set()
            release.wait(10)
        return results

    b.archive.store_many = store_then_hang  # type: ignore[method-assign]
    a.replication.start()  # type: ignore[union-attr]
    wait_for(stored.is_set, what="B with the second batch durable, not answered")
    assert states(a) == {"confirmed": 5, "pending": 7} and len(held(b)) == 10
    proxy.cut()  # B dies mid-batch: A's request is reset, no answer
    http.stop(kill=True)
    release.set()
    http.thread.join(10)
    b.close()

    def broken() -> list[dict[str, Any]]:
        return [r for r in rows(a)[5:10] if r["state"] == "pending" and r["attempts"] >= 1 and r["last_error"]]

    wait_for(lambda: len(broken()) == 5, what="the broken batch recorded as an error")
    assert states(a) == {"confirmed": 5, "pending": 7}
    b = sites.build("B", [twinpacs_peer("A", free_port())])  # B restarts on the same data
    assert len(held(b)) == 10  # the batch B made durable before it died; A confirmed none of it
    assert states(a) == {"confirmed": 5, "pending": 7}

    proxy.resume(sites.serve(b).port)
    wait_for(lambda: states(a) == {"confirmed": 12}, what="all 12 confirmed")
    assert held(b) == held(a) and b.index.counts()["instances"] == 12
    # Exactly once: what B already held was confirmed by hash, not sent a second time.
    assert b.archive.figures()["duplicates_received"] == 0


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "twinpacs", *args], capture_output=True, text=True, timeout=60)
