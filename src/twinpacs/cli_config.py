"""`twinpacs config check|show|history|diff` (being written)."""

import typer

app = typer.Typer(help="Validate, show and compare configurations.", no_args_is_help=True)
