"""The composition root: builds backends and services from Settings. No logic lives here."""

from __future__ import annotations

from dataclasses import dataclass

from .config import Settings
from .core.archive import Archive
from .index.sql import SqlIndex
from .storage.filesystem import FilesystemBlobStore


@dataclass
class Site:
    settings: Settings
    archive: Archive
    index: SqlIndex

    @property
    def name(self) -> str:
        return self.settings.site_name

    @property
    def ae_title(self) -> str:
        return self.settings.site.ae_title

    def close(self) -> None:
        self.index.close()


def build_site(settings: Settings) -> Site:
    data_dir = settings.site.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    index = SqlIndex(settings.database_url)
    archive = Archive(
        FilesystemBlobStore(data_dir / "store"),
        index,
        conflict_policy=settings.storage.conflict_policy,
    )
    return Site(settings, archive, index)
