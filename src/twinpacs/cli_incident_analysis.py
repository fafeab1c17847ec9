"""(being written) `twinpacs incident suggest|report`."""

from __future__ import annotations

import typer


def add_commands(app: typer.Typer) -> None:
    """Adds suggest and report to the `incident` command group."""
