"""`twinpacs import`: files and folders into the archive, each file on its own, so one bad
file is reported and skipped while the rest are stored."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .core.archive import Archive
from .errors import TwinpacsError


@dataclass
class ImportSummary:
    counts: Counter[str] = field(default_factory=Counter)
    rejected: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {**{k: self.counts.get(k, 0) for k in ("stored", "duplicate", "conflict")},
                "rejected": [{"path": p, "reason": r} for p, r in self.rejected]}


def _files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        else:
            yield path


def import_files(archive: Archive, paths: list[Path], show_progress: bool = True) -> ImportSummary:
    files = list(_files(paths))
    summary = ImportSummary()
    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not show_progress, transient=True) as progress:
        task = progress.add_task("import", total=len(files))
        for path in files:
            try:
                result = archive.store(path.read_bytes(), source=f"import:{path.name}")
                summary.counts[result.status.value] += 1
            except TwinpacsError as exc:
                summary.rejected.append((str(path), exc.message))
            except OSError as exc:
                summary.rejected.append((str(path), f"cannot read: {exc.strerror}"))
            progress.advance(task)
    return summary


def summary_lines(summary: ImportSummary) -> list[str]:
    counts = summary.as_dict()
    lines = [f"stored {counts['stored']}, duplicate {counts['duplicate']} (nothing written), "
             f"conflicting version kept {counts['conflict']}, rejected {len(summary.rejected)}"]
    lines += [f"  rejected {path}: {reason}" for path, reason in summary.rejected]
    return lines
