"""Content-addressed files: objects/ab/cd/<hash>. Write to a temporary name in the same
filesystem, fsync the file, rename over the final name, fsync the folder. A reader or a
crash therefore sees either no file or the whole file, never a partial one.

Several archive nodes may share one store folder: a temporary name says which process on
which host writes it, so a node starting up discards only what dead writers left."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ..errors import NotFound

T = TypeVar("T")
WRITERS = 8  # parallel file writes of one put_many: enough for the filesystem to group their commits


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
        return self.put_many([(key, data)])[0]

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> list[int]:
        """Store several objects durably; per item the bytes written (0: the key was there, or
        earlier in `items`). The files are written and fsynced in parallel threads, so the
        filesystem commits their metadata together instead of once per file, then renamed into
        place, then each folder that received one is fsynced once. On any failure nothing
        half-written is visible: the temporary files are removed and the error raised."""
        written = [0] * len(items)
        todo: dict[str, int] = {}  # key -> its first item
        for number, (key, _) in enumerate(items):
            if key not in todo and not self._final(key).exists():
                todo[key] = number
        if not todo:
            return written
        temps: dict[str, Path] = {}  # filled by the writing threads (dict assignment is atomic)

        def write(key: str) -> None:
            temps[key] = self._write_temp(key, items[todo[key]][1])

        try:
            _each(write, list(todo))
            folders: set[Path] = set()
            for key in todo:
                final = self._final(key)
                # A new folder needs no fsync of its own parent: on a journaling filesystem
                # (ext4, XFS) the folder's fsync below commits the journal that created it.
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(temps.pop(key), final)
                folders.add(final.parent)
                written[todo[key]] = len(items[todo[key]][1])
            _each(_fsync_dir, list(folders))
        finally:
            for temp in temps.values():  # what was not renamed never became visible
                temp.unlink(missing_ok=True)
        return written

    def _write_temp(self, key: str, data: bytes) -> Path:
        # Unique temp name: two parallel writes of one object never share a partial file.
        tmp = self._tmp / f"{key}.{uuid.uuid4().hex}.{socket.gethostname()}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        return tmp

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


def _each(work: Callable[[T], object], items: Sequence[T]) -> None:
    """`work` on every item: in parallel threads when there are several (file writes and
    fsyncs release the GIL), inline for one, so a single put costs no thread."""
    if len(items) < 2:
        for item in items:
            work(item)
        return
    with ThreadPoolExecutor(max_workers=min(WRITERS, len(items))) as pool:
        list(pool.map(work, items))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
