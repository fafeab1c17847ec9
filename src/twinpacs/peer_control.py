"""Asking a twinpacs peer to take a role, over its HTTP API (used by the failover)."""

from __future__ import annotations

import httpx

from .config import PeerSettings
from .core.accounts import bearer
from .errors import TwinpacsError


class PeerUnreachable(TwinpacsError):
    http_status = 502


class HttpPeerControl:
    def __init__(self, peers: list[PeerSettings], timeout_s: float = 10.0) -> None:
        self.peers = {p.name: p for p in peers}
        self.timeout_s = timeout_s

    def set_role(self, peer: str, role: str, active_site: str) -> None:
        settings = self.peers[peer]
        if settings.kind != "twinpacs":
            raise TwinpacsError(f"{peer} is not a twinpacs site: its role cannot be switched from here")
        url = f"{settings.base_url}/api/roles"
        try:
            response = httpx.post(url, json={"role": role, "active_site": active_site}, timeout=self.timeout_s,
                                  headers=bearer(settings.token.get_secret_value()))
        except httpx.HTTPError as exc:
            raise PeerUnreachable(f"cannot reach {peer} at {url}: {exc}") from None
        if response.status_code != 200:
            raise PeerUnreachable(f"{peer} refused the role change: HTTP {response.status_code} {response.text[:200]}")
