"""The HTTP door: DICOMweb (STOW-RS, QIDO-RS, WADO-RS) and the site's JSON API."""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Lazy: importing a helper module such as web.multipart must not build the whole app
    # (the app's routes import modules that import those helpers).
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
