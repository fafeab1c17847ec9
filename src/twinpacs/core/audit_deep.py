"""The deep audit: the index says what a site holds, this checks that the files say so too.

Every indexed instance's file is read back from the blob store and its content hash
recomputed from the bytes (core.parsing), so a file deleted, truncated or altered on disk
behind twinpacs's back is found even though the index, and so the digests, look perfect.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import NotFound, TwinpacsError
from ..ports import BlobStore
from .audit_presence import Entry
from .parsing import parse_part10


@dataclass(frozen=True)
class FileProblem:
    SOPInstanceUID: str
    StudyInstanceUID: str
    PatientID: str
    content_hash: str
    problem: str  # "missing" | "corrupt"
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def deep_check(entries: Iterable[Entry], blobs: BlobStore,
               progress: Callable[[int], None] = lambda _: None) -> tuple[int, list[FileProblem]]:
    """(files checked, problems found). `progress` is told the size of each file read."""
    checked, problems = 0, []
    for entry in entries:
        problem = _check(entry, blobs)
        checked += 1
        progress(entry.size)
        if problem is not None:
            problems.append(FileProblem(entry.SOPInstanceUID, entry.StudyInstanceUID, entry.PatientID,
                                        entry.content_hash, *problem))
    return checked, problems


def _check(entry: Entry, blobs: BlobStore) -> tuple[str, str] | None:
    try:
        data = blobs.get(entry.content_hash)
    except NotFound:
        return "missing", "no file for this content hash in the store"
    try:
        found = parse_part10(data).content_hash
    except TwinpacsError as exc:
        return "corrupt", exc.message
    if found != entry.content_hash:
        return "corrupt", f"the file's content hashes to {found}"
    return None
