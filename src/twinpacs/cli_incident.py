"""(being written) `twinpacs incident ...`: the incident register."""

from __future__ import annotations

import typer

from . import cli_incident_analysis

app = typer.Typer(help="The incident register: record, classify, suggest, report.", no_args_is_help=True)
cli_incident_analysis.add_commands(app)
