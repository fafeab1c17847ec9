"""Two nodes of one site sharing one database and one store folder, both ingesting at once,
both replicating from the one outbox to a peer. On the PostgreSQL pass the shared database is
one PostgreSQL schema (claims skip rows another node has locked); on the default pass, the
SQLite file."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from twinpacs.core.parsing import parse_part10
from twinpacs.dimse import start_dimse
from twinpacs.index.schema import changes, instances
from twinpacs.storage.filesystem import FilesystemBlobStore
from twinpacs.synthetic import StudySpec, encode, make_study
from twinpacs.web.multipart import encode_parts, new_boundary
from tests.conftest import stored_files

from .conftest import HOST, Sites, free_port, rows, states, twinpacs_peer, wait_for

STUDIES, PER_STUDY = 3, 30


def _files(folder: Path) -> dict[str, tuple[Path, bytes]]:
    """SOP Instance UID -> (file, bytes) of the synthetic instances, in a stable order."""
    folder.mkdir()
    made: dict[str, tuple[Path, bytes]] = {}
    for k in range(STUDIES):
        spec = StudySpec(patient_id=f"SHARED{k}", series=2, instances_per_series=PER_STUDY // 2,
                         rows=8, columns=8, seed=70 + k)
        for ds in make_study(spec):
            data = encode(ds)
            path = folder / f"{len(made):03d}.dcm"
            path.write_bytes(data)
            made[str(ds.SOPInstanceUID)] = (path, data)
    return made


def _storescu(port: int, files: list[Path]) -> subprocess.Popen[bytes]:
    """DCMTK storescu sending `files` in this order on one association, in a process of its own."""
    return subprocess.Popen(["storescu", "-aec", "A", HOST, str(port), *map(str, files)],
                            env={**os.environ, "TCP_NODELAY": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _stow_each(url: str, objects: list[bytes], failures: list[str]) -> None:
    """One STOW-RS request per object, so this sender interleaves with the others."""
    with httpx.Client(timeout=30) as client:
        for data in objects:
            boundary = new_boundary()
            content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
            response = client.post(f"{url}/dicom-web/studies", headers={"Content-Type": content_type},
                                   content=encode_parts([("application/dicom", data)], boundary))
            if response.status_code != 200:
                failures.append(f"{response.status_code} {response.text}")


@pytest.mark.timeout(180)
def test_two_nodes_on_one_database_and_store_lose_nothing_and_send_each_object_once(
        sites: Sites, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port_c = free_port()
    # Same settings twice: same site name, data folder (store) and database.
    nodes = [sites.build("A", [twinpacs_peer("C", port_c)]) for _ in range(2)]
    assert nodes[0].settings.database_url == nodes[1].settings.database_url
    peer = sites.build("C", [twinpacs_peer("A", free_port())])

    # The peer counts every object it is sent, by SOP Instance UID: each must come once.
    received: Counter[str] = Counter()
    lock = threading.Lock()
    store_many = peer.archive.store_many

    def counting_store(datas: list[bytes], *args: Any) -> Any:
        with lock:
            received.update(str(parse_part10(data).dataset.SOPInstanceUID) for data in datas)
        return store_many(datas, *args)

    monkeypatch.setattr(peer.archive, "store_many", counting_store)
    sites.serve(peer, port_c)

    # Which node's worker delivered what: both must have claimed from the one outbox.
    delivered_by: list[Counter[str]] = []
    for node in nodes:
        client = node.replication.workers["C"].client  # type: ignore[union-attr]
        counted: Counter[str] = Counter()
        delivered_by.append(counted)

        def deliver(objects: Any, _deliver: Any = client.deliver, _counted: Counter[str] = counted) -> Any:
            _counted.update(o.item.sop_instance_uid for o in objects)
            return _deliver(objects)

        monkeypatch.setattr(client, "deliver", deliver)

    doors = [start_dimse(node) for node in nodes]
    http = sites.serve(nodes[1])
    try:
        for node in nodes:
            node.replication.start()  # type: ignore[union-attr]
        made = _files(tmp_path / "incoming")
        uids = list(made)
        third = len(uids) // 3
        # Node 1 gets the first two thirds, node 2 the last two (by DIMSE) and the middle
        # third again (by STOW-RS): the middle third comes to both nodes at the same moment.
        middle, first, last = uids[third:2 * third], uids[:third], uids[2 * third:]
        senders = [_storescu(doors[0].port, [made[u][0] for u in middle + first]),
                   _storescu(doors[1].port, [made[u][0] for u in middle + last])]
        failures: list[str] = []
        stow = threading.Thread(target=_stow_each, args=(http.url, [made[u][1] for u in middle], failures))
        stow.start()
        for sender in senders:
            out, _ = sender.communicate(timeout=120)
            assert sender.returncode == 0, out.decode(errors="replace")
        stow.join(120)
        assert not failures

        # Nothing lost, nothing twice: one current row per instance, each file whole.
        with nodes[0].index.db.read() as conn:
            held = dict(conn.execute(select(instances.c.SOPInstanceUID, instances.c.content_hash)).all())
            per_uid = conn.execute(select(instances.c.SOPInstanceUID, func.count())
                                   .group_by(instances.c.SOPInstanceUID).having(func.count() > 1)).all()
            logged = Counter(conn.execute(select(changes.c.SOPInstanceUID)).scalars())
        assert set(held) == set(uids) and per_uid == []
        assert logged == Counter(uids), "each instance is one change (so one queued job), not two"
        for uid, (_, data) in made.items():
            sent = parse_part10(data)
            assert held[uid] == sent.content_hash
            kept = nodes[0].archive.blobs.get(held[uid])
            assert kept[parse_part10(kept).dataset_offset:] == data[sent.dataset_offset:]
        store_root = nodes[0].settings.site.data_dir / "store"
        assert sorted(p.name for p in stored_files(store_root)) == sorted(held.values())
        assert list((store_root / "tmp").iterdir()) == []
        figures = nodes[0].archive.figures()
        # The middle third came three times: twice more each, recognised as the same object.
        assert (figures["instances"], figures["duplicates_received"], figures["conflicts_received"]) == (
            len(uids), 2 * len(middle), 0)

        # Each queued job done once: every row confirmed, every object sent to the peer once.
        wait_for(lambda: states(nodes[0]) == {"confirmed": len(uids)}, timeout=60, what="every row confirmed")
        assert len(rows(nodes[0])) == len(uids)
        assert received == Counter(uids)
        assert peer.archive.figures()["duplicates_received"] == 0
        assert sum(delivered_by, Counter()) == Counter(uids), "no row was claimed by both nodes"
        assert all(delivered_by), f"both nodes' workers claimed rows: {[sum(c.values()) for c in delivered_by]}"
    finally:
        for door in doors:
            door.shutdown()


def test_a_node_starting_discards_only_what_dead_writers_left_in_the_shared_store(tmp_path: Path) -> None:
    FilesystemBlobStore(tmp_path)
    finished = subprocess.Popen(["true"])
    finished.wait()
    here = socket.gethostname()
    in_flight = tmp_path / "tmp" / f"{'a' * 64}.{'0' * 32}.{here}.{os.getpid()}"  # a live node's write
    abandoned = tmp_path / "tmp" / f"{'b' * 64}.{'0' * 32}.{here}.{finished.pid}"  # a crashed one's
    elsewhere = tmp_path / "tmp" / f"{'c' * 64}.{'0' * 32}.other-host.{finished.pid}"  # another host's
    for path in (in_flight, abandoned, elsewhere):
        path.write_bytes(b"partial")
    FilesystemBlobStore(tmp_path)  # another node starts on the same folder
    assert in_flight.exists() and elsewhere.exists() and not abandoned.exists()
