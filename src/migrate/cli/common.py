"""Options and helpers shared by the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from migrate.cli.output import Output

OutputOption = Annotated[
    Output, typer.Option("--output", "-o", help="table for people, json for machines (stdout).")
]
PhaseOption = Annotated[
    int | None, typer.Option("--phase", min=1, help="Only this phase (1..n).", metavar="N")
]

BaseImageOption = Annotated[
    str | None,
    typer.Option(
        "--base-image",
        help="Base image of the plugin images (overrides MIGRATE_BASE_IMAGE and "
        "target.base_image).",
        metavar="IMAGE",
    ),
]


def use_base_image(image: str | None) -> None:
    """`--base-image`: the config loader reads it from MIGRATE_BASE_IMAGE, as child
    processes do."""
    import os

    from migrate.config import ENV_BASE_IMAGE

    if image:
        os.environ[ENV_BASE_IMAGE] = image


def project_dir(ctx: typer.Context) -> Path:
    """The `-C` directory."""
    root_obj = ctx.find_root().obj or {}
    path: Path = root_obj.get("project", Path("."))
    return path


def resolve(ctx: typer.Context, path: Path) -> Path:
    """A path from the command line, relative to the `-C` directory like `git -C`."""
    return path if path.is_absolute() else project_dir(ctx) / path


def json_mode(output: Output) -> bool:
    from migrate.cli import output as out

    out.state["json"] = output is Output.json
    return out.state["json"]
