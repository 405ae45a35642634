"""`migrate verify`: run the checks, print a table per phase, exit 0 or 1."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from migrate.cli.common import OutputOption, PhaseOption, json_mode, project_dir, resolve
from migrate.cli.output import ConsoleReporter, Output

if TYPE_CHECKING:
    from migrate.verify.model import VerifyReport

JunitOption = Annotated[
    Path | None,
    typer.Option("--junit-xml", help="Write a JUnit XML report (one testcase per check).",
                 metavar="PATH"),
]  # fmt: skip
TimeoutOption = Annotated[
    float | None,
    typer.Option("--timeout", min=1, help="Seconds a check may take before its host counts as "
                 "not answering (default 60).", metavar="SECONDS"),
]  # fmt: skip


def verify(
    ctx: typer.Context,
    phase: PhaseOption = None,
    junit_xml: JunitOption = None,
    output: OutputOption = Output.table,
    timeout: TimeoutOption = None,
) -> None:
    """Run each task's checks through testinfra; a task is done when all its checks pass."""
    from migrate import api
    from migrate.cli.output import err, print_json

    as_json = json_mode(output)
    # in a terminal the table below shows every result: the live lines are not kept too
    live = not as_json and err().is_terminal
    reporter_class = _LiveResults if live else ConsoleReporter
    with reporter_class() as reporter:
        result = api.verify(
            project_dir(ctx),
            phase,
            junit_xml=resolve(ctx, junit_xml) if junit_xml else None,
            timeout=timeout,
            reporter=reporter,
        )
    if as_json:
        print_json(result.to_dict())
    else:
        print_checks(result)
    if not result.passed:
        raise typer.Exit(1)


_LIVE = "\0last result"


class _LiveResults(ConsoleReporter):
    """The runner's line per result, shown in the progress display while the checks run
    and gone when they end, instead of printed above it: in a terminal the table printed
    at the end would say each result a second time."""

    def info(self, message: str) -> None:
        from rich.markup import escape

        with self._lock:
            bar = self._bar()
            if _LIVE not in self._tasks:
                self._tasks[_LIVE] = bar.add_task(escape(message), total=None)
            else:
                bar.update(self._tasks[_LIVE], description=escape(message))


def print_checks(
    result: VerifyReport,
    title: str = "Verified",
    progress: dict[int, tuple[int, int]] | None = None,
) -> None:
    """`progress`: (tasks done, tasks) of a whole phase whose checks ran for some of its
    tasks only (`apply --only`): the title tells the phase's truth, not the subset's."""
    from rich.markup import escape
    from rich.table import Table

    from migrate.cli.output import out

    console = out()
    for phase in result.phases:
        done, total = (progress or {}).get(
            phase.id, (sum(t.done for t in phase.tasks), len(phase.tasks))
        )
        mark = "[green]done[/]" if done == total else f"{done} of {total} tasks done"
        table = Table(
            title=f"{title} phase {phase.id}: {escape(phase.name)} ({mark})", title_justify="left"
        )
        for column in ("task", "check", "host", "result"):
            table.add_column(column, no_wrap=column == "task")
        for task in phase.tasks:
            if not task.checks:
                state = "[green]done[/]" if task.done else "[red]not done[/]"
                table.add_row(escape(task.id), "-", "-", f"{state}: {escape(task.note)}")
            for check in task.checks:
                state = (
                    "[green]pass[/]"
                    if check.passed
                    else "[red]ERROR[/]"
                    if check.error
                    else "[red]FAIL[/]"
                )
                table.add_row(
                    escape(task.id),
                    escape(check.name),
                    escape(check.host),
                    f"{state} {escape(check.message)}",
                )
        console.print(table)
    total, failed = len(result.checks), len(result.failed)
    if result.passed:
        console.print(f"[green]All {total} checks passed.[/]")
    else:
        errors = len(result.errors)
        detail = f" ({errors} could not be run: errors)" if errors else ""
        console.print(f"[red]{failed} of {total} checks failed{detail}.[/]")
