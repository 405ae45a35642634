"""`migrate plan`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from migrate.cli.checks import MinimumSeverity, MinimumSeverityOption, SkipCheckOption
from migrate.cli.common import OutputOption, PhaseOption, json_mode, project_dir
from migrate.cli.output import Output

if TYPE_CHECKING:
    from migrate.engine.plan import Plan

STYLES = {"create": "green", "update": "yellow", "delete": "red", "noop": "dim"}


def plan(
    ctx: typer.Context,
    phase: PhaseOption = None,
    output: OutputOption = Output.table,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode", help="Exit 0 when nothing is pending, 2 when changes are."
        ),
    ] = False,
    minimum_failure_severity: MinimumSeverityOption = MinimumSeverity.error,
    skip_check: SkipCheckOption = None,
) -> None:
    """Show what apply would change, per phase and task (changes nothing).

    The rendered manifests of every phase are then checked as a set (selectors, ports,
    autoscalers, quota, runtime contract); findings that reach
    --minimum-failure-severity make plan exit 1.
    """
    from migrate import api

    as_json = json_mode(output)
    result = api.plan(project_dir(ctx), phase, skip_checks=skip_check or [])
    if as_json:
        from migrate.cli.output import print_json

        print_json(result.to_dict())
    else:
        print_plan(result)
        if result.lint is not None:
            from migrate.cli.checks import print_findings

            print_findings(result.lint)
    if result.lint is not None and result.lint.fails(minimum_failure_severity.value):
        raise typer.Exit(1)
    if detailed_exitcode and result.has_changes:
        raise typer.Exit(2)


def print_plan(result: Plan) -> None:
    from migrate.cli.output import escape, print_markup
    from migrate.engine.change import SYMBOLS

    # one print of every line: Rich's cost is per call (a plan has hundreds of lines)
    lines: list[str] = []
    for phase_plan in result.phases:
        phase = phase_plan.phase
        state = "[green]done[/]" if phase_plan.done else "[dim]not done[/]"
        duration = f" [dim]({escape(phase.duration)})[/]" if phase.duration else ""
        lines.append(f"\n[bold]Phase {phase.id}: {escape(phase.name)}[/]{duration} {state}")
        for task_plan in phase_plan.tasks:
            task = task_plan.task
            notes: list[str] = [task.action]
            if task_plan.done:
                notes.append("[green]done[/]")
            lines.append(f"  [bold]{task.id}[/] {escape(task.title)} [dim]({', '.join(notes)})[/]")
            for change in task_plan.changes:
                style = STYLES[change.op]
                lines.append(
                    f"    [{style}]{SYMBOLS[change.op]} {escape(change.resource)}[/]: "
                    f"{escape(change.summary)}"
                )
                if change.pending and change.cannot_undo:
                    lines.append(
                        f"        [bold red]! cannot be undone:[/] {escape(change.cannot_undo)}"
                    )
                if change.detail:
                    for line in change.detail.splitlines():
                        line_style = {"+": "green", "-": "red", "@": "cyan"}.get(line[:1], "dim")
                        lines.append(f"        [{line_style}]{escape(line)}[/]")
    counts = result.summary()
    lines.append(
        f"\n[bold]Plan:[/] {counts['create']} to create, {counts['update']} to update, "
        f"{counts['delete']} to delete, {counts['noop']} unchanged."
    )
    print_markup("\n".join(lines))
