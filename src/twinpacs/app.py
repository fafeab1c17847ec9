"""The composition root: builds backends and services from Settings. No logic lives here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from .config import Settings
from .core.archive import Archive
from .core.roles import Roles
from .index.sql import SqlIndex
from .storage.filesystem import FilesystemBlobStore


class BackgroundService(Protocol):
    """Something a serving site runs beside its listeners (the replication worker...)."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


@dataclass
class Site:
    settings: Settings
    archive: Archive
    index: SqlIndex
    roles: Roles
    background: list[BackgroundService] = field(default_factory=list)

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
        peers=[peer.name for peer in settings.peers],
        site_name=settings.site_name,
    )
    roles = Roles(index, archive, settings.site_name, settings.site.role, [p.name for p in settings.peers])
    return Site(settings, archive, index, roles)
