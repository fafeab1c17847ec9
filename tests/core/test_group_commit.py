"""Group commit of concurrent stores (several DIMSE associations): the objects that arrive while
a commit runs share the next index transaction, each caller gets its own result only once its
rows are committed, a bad object fails alone, and a lone store commits at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event

from twinpacs.core.archive import Archive, StoreResult, StoreStatus
from twinpacs.index.transaction import IndexTransaction
from twinpacs.synthetic import StudySpec, encode, make_study

SPEC = StudySpec(series=1, instances_per_series=4, rows=16, columns=16)


def _commits(archive: Archive) -> list[int]:
    counted = [0]
    event.listen(archive.index.db.writer, "commit", lambda conn: counted.__setitem__(0, counted[0] + 1))
    return counted


def _until(condition: Callable[[], bool]) -> None:
    """Wait (bounded) for another thread to reach a state; the test asserts behaviour, not time."""
    for _ in range(2000):
        if condition():
            return
        time.sleep(0.005)
    raise AssertionError("the other threads never got there")


class _Stores:
    """Stores run in threads, the first held inside its index transaction until `release`."""

    def __init__(self, archive: Archive, monkeypatch: pytest.MonkeyPatch) -> None:
        self.archive = archive
        self.held = threading.Event()
        self.release = threading.Event()
        self.batches: list[int] = []  # objects per index transaction
        self.results: dict[int, StoreResult | BaseException] = {}
        self._threads: list[threading.Thread] = []
        real_write = archive.index.write

        def write(work: Callable[[IndexTransaction], Any]) -> Any:
            result = real_write(work)
            self.batches.append(len(result) if isinstance(result, list) else 1)
            if len(self.batches) == 1:
                self.held.set()
                self.release.wait(30)
            return result

        monkeypatch.setattr(archive.index, "write", write)

    def start(self, number: int, data: bytes) -> None:
        def run() -> None:
            try:
                self.results[number] = self.archive.store(data, f"ASSOC{number}")
            except BaseException as exc:
                self.results[number] = exc

        thread = threading.Thread(target=run)
        thread.start()
        self._threads.append(thread)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(30)


def test_stores_arriving_during_a_commit_share_the_next_transaction(
        archive: Archive, monkeypatch: pytest.MonkeyPatch) -> None:
    datas = [encode(ds) for ds in make_study(SPEC)]
    stores = _Stores(archive, monkeypatch)
    stores.start(0, datas[0])
    _until(stores.held.is_set)  # the first store's transaction has committed; its caller waits
    for number in (1, 2, 3):
        stores.start(number, datas[number])
    _until(lambda: len(archive._waiting) == 3)
    assert stores.results == {}
    assert archive.index.counts()["instances"] == 1  # the others are not visible before their commit
    stores.release.set()
    stores.join()
    assert stores.batches == [1, 3]  # index transactions, and the objects in each
    assert all(isinstance(r, StoreResult) and r.status is StoreStatus.STORED for r in stores.results.values())
    assert archive.index.counts()["instances"] == 4
    assert [archive.read(i) for i in archive.instances(study=make_study(SPEC)[0].StudyInstanceUID)] == datas


def test_a_bad_object_in_a_group_fails_alone(archive: Archive, monkeypatch: pytest.MonkeyPatch) -> None:
    datas = [encode(ds) for ds in make_study(SPEC)]
    bad = make_study(SPEC)[2].SOPInstanceUID
    real_insert = IndexTransaction.insert_instance

    def insert_refusing_one(tx: IndexTransaction, record: Any, *args: Any) -> None:
        if record.sop_instance_uid == bad:
            raise RuntimeError("the index refuses this row")
        real_insert(tx, record, *args)

    monkeypatch.setattr(IndexTransaction, "insert_instance", insert_refusing_one)
    stores = _Stores(archive, monkeypatch)
    stores.start(0, datas[0])
    _until(stores.held.is_set)
    for number in (1, 2, 3):
        stores.start(number, datas[number])
    _until(lambda: len(archive._waiting) == 3)
    stores.release.set()
    stores.join()
    assert isinstance(stores.results[2], RuntimeError)
    assert [stores.results[n].status for n in (0, 1, 3)] == [StoreStatus.STORED] * 3  # type: ignore[union-attr]
    assert archive.index.counts()["instances"] == 3 and archive.index.current_hash(bad) is None


def test_a_lone_store_commits_its_own_object_at_once(archive: Archive) -> None:
    data = encode(make_study(SPEC)[0])
    commits = _commits(archive)
    assert archive.store(data, "TEST").status is StoreStatus.STORED
    assert commits == [1] and archive._waiting == []
    assert archive.store(data, "TEST").status is StoreStatus.DUPLICATE
