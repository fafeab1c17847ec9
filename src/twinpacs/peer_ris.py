"""The client that sends the RIS state to another twinpacs site (core/ris_sync.py): a POST of a
batch of changes to its /api/replication/ris, as peer.py sends images, with the same origin
header. The batch counts as delivered only when the peer answered for every change in it."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from .config import PeerSettings
from .core.accounts import bearer
from .core.ris_sync import APPLIED, HELD, KEPT, RisChange
from .peer import ORIGIN_HEADER


class HttpRisPeer:
    def __init__(self, peer: PeerSettings, site_name: str, timeout: float = 30.0) -> None:
        self.name = peer.name
        self._url = f"{peer.base_url}/api/replication/ris"
        self._http = httpx.Client(timeout=timeout,
                                  headers={ORIGIN_HEADER: site_name, **bearer(peer.token.get_secret_value())})

    def send(self, changes: Sequence[RisChange]) -> str:
        try:
            response = self._http.post(self._url, json={"changes": [c.as_wire() for c in changes]})
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if response.status_code != 200:
            return f"HTTP {response.status_code}: {response.text[:300]}"
        try:
            results = response.json()["results"]
        except (ValueError, KeyError, TypeError):
            results = None
        if not isinstance(results, list) or len(results) != len(changes) \
                or not all(r in (APPLIED, HELD, KEPT) for r in results):
            return f"the peer did not answer for each change: {response.text[:200]!r}"
        return ""

    def close(self) -> None:
        self._http.close()
