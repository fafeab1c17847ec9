"""Precomputed WADO-RS metadata (PS3.18 F.2) per stored object, keyed by content hash.

Stored content never changes under its hash, so an entry never goes stale. An entry is
the instance's DICOM JSON as text, with its own random token where the instance's URL
goes (BulkDataURIs depend on the URL the client used): serving is a lookup and a string
replace, not a file parse. Entries are kept in memory (bounded) and, for file-backed
stores, written lazily beside the store as cache files (temporary name + rename, so a
reader sees a whole entry or none; no fsync: a lost or torn entry is recomputed, and
format checks reject a torn one)."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

FORMAT = "v1"  # bump when metadata_json's output changes: old entries are then ignored
_TOKEN_LEN = 32


def dumps(content: Any) -> str:
    """The DICOM JSON text form every metadata response uses."""
    return json.dumps(content, ensure_ascii=False, separators=(",", ":"))


class MetadataCache:
    def __init__(self, root: Path | None, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.root = root / FORMAT if root is not None else None
        self._memory: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def instance_json(self, content_hash: str, instance_url: str,
                      compute: Callable[[Callable[[int], str]], dict[str, Any]]) -> str:
        """The instance's metadata as JSON text for `instance_url`. On a miss `compute(bulk_uri)`
        builds the dict (parsing the stored object) once; the result is kept."""
        entry = self._get(content_hash)
        if entry is None:
            token = uuid.uuid4().hex
            text = dumps(compute(lambda tag: f"{token}/bulkdata/{tag:08X}"))
            entry = (token, text)
            self._put(content_hash, entry)
            self._write(content_hash, entry)
        token, text = entry
        return text.replace(token, dumps(instance_url)[1:-1]) if token in text else text

    # -- memory ------------------------------------------------------------------------------

    def _get(self, key: str) -> tuple[str, str] | None:
        with self._lock:
            entry = self._memory.get(key)
            if entry is not None:
                self._memory.move_to_end(key)
                return entry
        entry = self._read(key)
        if entry is not None:
            self._put(key, entry)
        return entry

    def _put(self, key: str, entry: tuple[str, str]) -> None:
        size = len(entry[1]) + len(key) + 100
        if size > self._max_bytes:
            return
        with self._lock:
            if key in self._memory:
                return
            self._memory[key] = entry
            self._bytes += size
            while self._bytes > self._max_bytes:
                old_key, old = self._memory.popitem(last=False)
                self._bytes -= len(old[1]) + len(old_key) + 100

    # -- files -------------------------------------------------------------------------------

    def _file(self, key: str) -> Path | None:
        if self.root is None or len(key) < 4 or not key.isalnum():
            return None
        return self.root / key[:2] / f"{key}.json"

    def _read(self, key: str) -> tuple[str, str] | None:
        path = self._file(key)
        if path is None:
            return None
        try:
            raw = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        token, sep, text = raw.partition("\n")
        # A torn or foreign file is ignored (and rewritten on this miss).
        if not sep or len(token) != _TOKEN_LEN or not text.startswith("{") or not text.endswith("}\n"):
            return None
        return token, text[:-1]

    def _write(self, key: str, entry: tuple[str, str]) -> None:
        path = self._file(key)
        if path is None:
            return
        tmp = path.with_name(f".{key}.{uuid.uuid4().hex}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(f"{entry[0]}\n{entry[1]}\n", encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)  # a cache: serving goes on without the file
