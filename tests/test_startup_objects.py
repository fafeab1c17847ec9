"""`twinpacs serve` leaves what its start built out of Python's full collections (serve.py):
each one of those took ~80 ms holding the GIL, during ingests (G3)."""

from __future__ import annotations

import gc

from twinpacs.serve import freeze_startup_objects


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


def test_the_start_is_frozen_and_later_garbage_still_collected() -> None:
    built_at_start = _Node()
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 0
        assert not any(o is built_at_start for o in gc.get_objects(generation=2))  # never visited again
        later = _Node()
        del later
        assert gc.collect() >= 1  # what is made afterwards is collected as before
    finally:
        gc.unfreeze()
