"""Content-addressed files: objects/ab/cd/<hash>. Write to a temporary name in the same
filesystem, fsync the file, rename over the final name, fsync the folder. A reader or a
crash therefore sees either no file or the whole file, never a partial one.

Several archive nodes may share one store folder: a temporary name says which process on
which host writes it, so a node starting up discards only what dead writers left."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

from ..errors import NotFound


class FilesystemBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._objects = root / "objects"
        self._tmp = root / "tmp"
        self._objects.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        # Leftovers of writes interrupted by a crash were never acknowledged: discard them.
        for leftover in self._tmp.iterdir():
            if _abandoned(leftover.name):
                leftover.unlink(missing_ok=True)

    def _final(self, key: str) -> Path:
        if len(key) < 8 or not key.isalnum():
            raise ValueError(f"bad blob key {key!r}")
        return self._objects / key[:2] / key[2:4] / key

    def put(self, key: str, data: bytes) -> int:
        final = self._final(key)
        if final.exists():
            return 0  # same content already durable: G2, write nothing
        final.parent.mkdir(parents=True, exist_ok=True)
        # Unique temp name: two parallel writes of one object never share a partial file.
        tmp = self._tmp / f"{key}.{uuid.uuid4().hex}.{socket.gethostname()}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        _fsync_dir(final.parent)
        return len(data)

    def get(self, key: str) -> bytes:
        try:
            return self._final(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"object {key} is not in the store") from None

    def path(self, key: str) -> Path | None:
        return self._final(key)

    def exists(self, key: str) -> bool:
        return self._final(key).exists()

    def delete(self, key: str) -> None:
        self._final(key).unlink(missing_ok=True)


def _abandoned(name: str) -> bool:
    """Whether a temporary file's writer is gone: a process of this host that no longer runs.
    Another host's files (a store shared over a network filesystem) are left to that host."""
    parts = name.split(".", 2)
    if len(parts) != 3:
        return True  # not a name put() gives: nobody is writing it
    host, _, pid = parts[2].rpartition(".")
    if host != socket.gethostname():
        return False
    if not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
