"""`migrate data`: the application's file data into PostgreSQL (not available yet)."""

from __future__ import annotations

from typing import Annotated

import typer

from migrate.cli.common import OutputOption, json_mode
from migrate.cli.later import _refuse
from migrate.cli.output import Output

app = typer.Typer(
    help="Load the application's file data into PostgreSQL (not available yet).",
    no_args_is_help=True,
)

DatasetOption = Annotated[
    list[str] | None,
    typer.Option("--dataset", help="Only this dataset (repeatable).", metavar="NAME"),
]


@app.command("load")
def load(dataset: DatasetOption = None, output: OutputOption = Output.table) -> None:
    """Load every dataset into PostgreSQL (not available yet)."""
    json_mode(output)
    _refuse("data load")


@app.command("verify")
def verify(dataset: DatasetOption = None, output: OutputOption = Output.table) -> None:
    """Compare the source files with the database (not available yet)."""
    json_mode(output)
    _refuse("data verify")


@app.command("rollback")
def rollback(
    dataset: DatasetOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    output: OutputOption = Output.table,
) -> None:
    """Remove what data load created (not available yet)."""
    json_mode(output)
    _refuse("data rollback")
