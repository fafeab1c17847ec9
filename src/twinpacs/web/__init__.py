"""The HTTP door: DICOMweb (STOW-RS, QIDO-RS, WADO-RS) and the site's JSON API."""

from .app import create_app

__all__ = ["create_app"]
