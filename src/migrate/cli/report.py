"""`migrate report`: the Architecture Blueprint, boxes ticked by verified checks."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from migrate.cli.common import project_dir, resolve


class Format(enum.StrEnum):
    markdown = "markdown"
    html = "html"


def report(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="File to write (default: print to stdout).", metavar="FILE"),
    ] = None,
    fmt: Annotated[
        Format, typer.Option("--format", help="markdown, or html: a standalone page.")
    ] = Format.markdown,
) -> None:
    """Write the migration report: the blueprint with every verified task ticked."""
    import sys

    from migrate import api
    from migrate.cli import output
    from migrate.report.blueprint import write

    text = api.report(project_dir(ctx), fmt=fmt.value)
    if out is None:
        sys.stdout.write(text)
        return
    path = write(text, resolve(ctx, out))
    output.err().print(f"wrote {path}")
