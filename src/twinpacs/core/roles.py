"""Which site is active. The configuration gives the role at first start; a failover changes
it, and the change is kept in the index so a restart does not undo it."""

from __future__ import annotations

from typing import Protocol

from .archive import Archive, utcnow


class StateStore(Protocol):
    def state(self, key: str) -> str | None: ...
    def set_state(self, key: str, value: str, at: object) -> None: ...


class Roles:
    def __init__(self, store: StateStore, archive: Archive, site_name: str, configured_role: str,
                 peer_names: list[str]) -> None:
        self.store = store
        self.archive = archive
        self.site_name = site_name
        role = store.state("role") or configured_role
        active = store.state("active_site") or (site_name if role == "active" else _guess(peer_names))
        self._apply(role, active)

    @property
    def role(self) -> str:
        return self.archive.role

    @property
    def active_site(self) -> str:
        return self.archive.active_site

    def set(self, role: str, active_site: str) -> None:
        """Persist, then apply: a crash in between leaves the old role, never a half switch."""
        if role not in ("active", "standby"):
            raise ValueError(f"unknown role {role!r}")
        now = utcnow()
        self.store.set_state("role", role, now)
        self.store.set_state("active_site", active_site, now)
        self._apply(role, active_site)

    def _apply(self, role: str, active_site: str) -> None:
        self.archive.role = role
        self.archive.active_site = active_site


def _guess(peer_names: list[str]) -> str:
    """A standby configured with exactly one peer knows who is active; otherwise it says so."""
    return peer_names[0] if len(peer_names) == 1 else ""
