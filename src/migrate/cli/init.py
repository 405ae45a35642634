"""`migrate init`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from migrate.cli.common import OutputOption, json_mode, project_dir
from migrate.cli.output import Output


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def init(
    ctx: typer.Context,
    source: Annotated[
        Path | None,
        typer.Option(
            "--source",
            "-s",
            help="The legacy application: a directory with plugins/ and data/.",
            metavar="APP",
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Project name (default: the directory's).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing migrate.yaml and roadmap.")
    ] = False,
    output: OutputOption = Output.table,
) -> None:
    """Scaffold migrate.yaml and phases/roadmap.yaml, and show what the application holds."""
    from migrate import api

    as_json = json_mode(output)
    # like git -C, a relative --source is relative to the project directory
    result = api.init(project_dir(ctx), source, name=name, force=force)
    if as_json:
        from migrate.cli.output import print_json

        print_json(result.to_dict())
        return

    from rich.markup import escape
    from rich.table import Table

    from migrate.cli.output import out

    console = out()
    inventory = result.inventory
    plugins = Table(title=f"{len(inventory.plugins)} plugins in {inventory.root / 'plugins'}")
    for column in ("plugin", "version", "entrypoint", "requirements", "events"):
        plugins.add_column(column)
    for plugin in inventory.plugins:
        events = plugin.manifest.events
        flow = ", ".join(events.consumes) + " -> " + ", ".join(events.produces)
        plugins.add_row(
            escape(plugin.name),
            escape(plugin.version or "-"),
            escape(plugin.entrypoint),
            str(len(plugin.manifest.requirements)),
            escape(flow) if events.consumes or events.produces else "-",
        )
    datasets = Table(title=f"{len(inventory.datasets)} datasets in {inventory.root / 'data'}")
    for column in ("dataset", "files", "formats", "size"):
        datasets.add_column(column, justify="right" if column in ("files", "size") else "left")
    for dataset in inventory.datasets:
        datasets.add_row(
            escape(dataset.name),
            str(len(dataset.files)),
            ", ".join(dataset.formats),
            human_size(dataset.size),
        )
    console.print(plugins)
    console.print(datasets)
    from migrate.cli.output import warn

    for warning in inventory.warnings:
        warn(warning)
    for path in result.written:
        console.print(f"[green]wrote[/] {escape(str(path))}")
    console.print("Next: [bold]migrate plan[/] shows what each phase would change.")
