"""`migrate images`: one container image per plugin (not available yet)."""

from __future__ import annotations

from typing import Annotated

import typer

from migrate.cli.common import OutputOption, json_mode
from migrate.cli.later import _refuse
from migrate.cli.output import Output

app = typer.Typer(
    help="Build, list and remove the plugins' container images (not available yet).",
    no_args_is_help=True,
)

PluginOption = Annotated[
    list[str] | None,
    typer.Option("--plugin", help="Only this plugin (repeatable).", metavar="NAME"),
]


@app.command("build")
def build(
    plugin: PluginOption = None,
    push: Annotated[bool, typer.Option("--push", help="Push to target.registry.")] = False,
    output: OutputOption = Output.table,
) -> None:
    """Build one image per plugin (not available yet)."""
    json_mode(output)
    _refuse("images build")


@app.command("list")
def list_images(plugin: PluginOption = None, output: OutputOption = Output.table) -> None:
    """List the project's images (not available yet)."""
    json_mode(output)
    _refuse("images list")


@app.command("rollback")
def rollback(plugin: PluginOption = None, output: OutputOption = Output.table) -> None:
    """Remove the tags that builds created (not available yet)."""
    json_mode(output)
    _refuse("images rollback")
