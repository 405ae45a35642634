"""`migrate infra`: provision through the Pulumi Automation API (not available yet)."""

from __future__ import annotations

import typer

from migrate.cli.common import PhaseOption
from migrate.cli.later import _refuse

app = typer.Typer(
    help="Provision the cluster's resources through Pulumi (not available yet).",
    no_args_is_help=True,
)


@app.command("preview")
def preview(phase: PhaseOption = None) -> None:
    """Show what Pulumi would change (not available yet)."""
    _refuse("infra preview")


@app.command("up")
def up(phase: PhaseOption = None) -> None:
    """Provision a phase's resources (not available yet)."""
    _refuse("infra up")


@app.command("destroy")
def destroy(phase: PhaseOption = None) -> None:
    """Destroy a phase's stack (not available yet)."""
    _refuse("infra destroy")
