"""`migrate status`."""

from __future__ import annotations

import typer

from migrate.cli.common import OutputOption, json_mode, project_dir
from migrate.cli.output import Output


def short_time(iso: str | None) -> str:
    """`2026-11-26T16:06:09+00:00` -> `2026-11-26 16:06 UTC`."""
    if not iso:
        return "-"
    return iso[:16].replace("T", " ") + (" UTC" if iso.endswith("+00:00") else "")


def status(ctx: typer.Context, output: OutputOption = Output.table) -> None:
    """Show phases and tasks: done or not, last applied and last verified."""
    from migrate import api

    as_json = json_mode(output)
    result = api.status(project_dir(ctx))
    if as_json:
        from migrate.cli.output import print_json

        print_json(result.to_dict())
        return

    from rich.markup import escape
    from rich.table import Table

    from migrate.cli.output import out

    console = out()
    console.print(f"[bold]{escape(result.project)}[/]")
    for phase in result.phases:
        done = sum(t.done for t in phase.tasks)
        mark = "[green]done[/]" if phase.done else f"{done}/{len(phase.tasks)} tasks done"
        table = Table(
            title=f"Phase {phase.id}: {escape(phase.name)} ({mark})", title_justify="left"
        )
        for column in ("task", "action", "done", "last applied", "last verified"):
            table.add_column(column, no_wrap=column == "task")
        for task in phase.tasks:
            table.add_row(
                escape(task.id),
                task.action,
                "[green]yes[/]" if task.done else "no",
                short_time(task.last_applied),
                short_time(task.last_verified),
            )
        console.print(table)
