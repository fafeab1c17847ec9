"""`twinpacs migrate --storage-path`: copy the content-addressed object files to a new data
folder, each verified by SHA-256 against its source file. Opt-in, rate-limited, resumable:
a file already present at the target with the source's hash is skipped, a partial one
(never visible: written under tmp/ and renamed) is written again."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigurationError, TwinpacsError

_CHUNK = 1 << 20


@dataclass
class StoreCopy:
    files: int = 0
    copied: int = 0
    skipped: int = 0  # already present and verified
    bytes_copied: int = 0
    seconds: float = 0.0


def object_files(store: Path) -> Iterator[Path]:
    """Every object file of a store root (…/store), in a stable order."""
    objects = store / "objects"
    for folder, dirs, files in os.walk(objects):
        dirs.sort()
        for name in sorted(files):
            yield Path(folder) / name


def count_objects(store: Path) -> tuple[int, int]:
    files = total = 0
    for path in object_files(store):
        files, total = files + 1, total + path.stat().st_size
    return files, total


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def copy_store(source: Path, target: Path, max_rate: float | None = None,
               progress: Callable[[int, int], None] | None = None,
               stop_after: int | None = None) -> StoreCopy:
    """Copy every object file of store root `source` to store root `target`. `max_rate`:
    objects per second at most. `stop_after`: a test hook, stop after that many files."""
    if not (source / "objects").is_dir():
        raise ConfigurationError(f"{source} holds no object store (no objects/ folder)")
    if target.resolve() == source.resolve():
        raise ConfigurationError("the new storage path is the current one")
    tmp = target / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    total, _ = count_objects(source)
    result, started = StoreCopy(), time.monotonic()
    for path in object_files(source):
        if stop_after is not None and result.files >= stop_after:
            break
        if max_rate:  # pace: the n-th file not before n / rate seconds
            wait = started + result.files / max_rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        result.files += 1
        relative = path.relative_to(source)
        final = target / relative
        expected = _sha256(path)
        if final.exists() and _sha256(final) == expected:
            result.skipped += 1
        else:
            result.bytes_copied += _copy_verified(path, final, tmp, expected)
            result.copied += 1
        if progress:
            progress(result.files, total)
    result.seconds = time.monotonic() - started
    return result


def _copy_verified(path: Path, final: Path, tmp: Path, expected: str) -> int:
    """Write to tmp/, fsync, read back and compare, then rename into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = tmp / f"{final.name}.{uuid.uuid4().hex}"
    size = 0
    with path.open("rb") as src, partial.open("xb") as dst:
        while chunk := src.read(_CHUNK):
            dst.write(chunk)
            size += len(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    if _sha256(partial) != expected:
        partial.unlink(missing_ok=True)
        raise TwinpacsError(f"{final}: the copy does not match its source by SHA-256 (storage fault?)")
    os.replace(partial, final)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return size


def verify_store(source: Path, target: Path) -> list[str]:
    """Files of the source missing from the target or different there (by SHA-256)."""
    bad = []
    for path in object_files(source):
        other = target / path.relative_to(source)
        if not other.exists() or _sha256(other) != _sha256(path):
            bad.append(str(path.relative_to(source)))
    return bad
