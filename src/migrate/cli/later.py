"""Commands whose work comes in a later version: they take their documented
options and say what they will do, and exit 1. None pretends to work."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from migrate.cli.common import OutputOption, PhaseOption, json_mode
from migrate.cli.output import Output

JunitOption = Annotated[
    Path | None, typer.Option("--junit-xml", help="Write a JUnit XML report.", metavar="PATH")
]


def _refuse(verb: str) -> None:
    from migrate.api import not_available

    raise not_available(verb)


def verify(
    phase: PhaseOption = None,
    junit_xml: JunitOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Run each task's checks through testinfra (not available yet)."""
    json_mode(output)
    _refuse("verify")


def ci(
    phase: PhaseOption = None,
    junit_xml: JunitOption = None,
    plan_json: Annotated[
        Path | None, typer.Option("--plan-json", help="Write the JSON plan.", metavar="PATH")
    ] = None,
) -> None:
    """The pipeline step: plan, verify, reports; exit 0/1/2 (not available yet)."""
    _refuse("ci")


def report(
    out: Annotated[
        Path | None, typer.Option("--out", help="File to write.", metavar="FILE")
    ] = None,
) -> None:
    """Write the migration report: the blueprint with verified tasks ticked (not available yet)."""
    _refuse("report")
