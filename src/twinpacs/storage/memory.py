"""In-memory blob store for tests of the core."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from ..errors import NotFound


class MemoryBlobStore:
    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes) -> int:
        with self._lock:
            if key in self._blobs:
                return 0
            self._blobs[key] = bytes(data)
            return len(data)

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> list[int]:
        return [self.put(key, data) for key, data in items]

    def get(self, key: str) -> bytes:
        try:
            return self._blobs[key]
        except KeyError:
            raise NotFound(f"object {key} is not in the store") from None

    def path(self, key: str) -> Path | None:
        return None

    def exists(self, key: str) -> bool:
        return key in self._blobs

    def delete(self, key: str) -> None:
        with self._lock:
            self._blobs.pop(key, None)
