"""`twinpacs selftest` (being written)."""

import typer


def selftest() -> None:
    """Run the self-test against a running site (being written)."""
    raise typer.Exit(1)
