"""twinpacs: a two-site medical image archive that never lies about being in sync."""

__version__ = "0.1.0"
