"""`twinpacs db upgrade|check` and `twinpacs migrate` (being written)."""

import typer

app = typer.Typer(help="The index database: schema upgrades and checks.", no_args_is_help=True)


def migrate() -> None:
    """Copy the index to another database (being written)."""
    raise typer.Exit(1)
