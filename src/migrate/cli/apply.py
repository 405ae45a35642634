"""`migrate apply` and `migrate rollback`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from migrate.cli.common import (
    BaseImageOption,
    OutputOption,
    json_mode,
    project_dir,
    use_base_image,
)
from migrate.cli.output import Output

if TYPE_CHECKING:
    from migrate import api
    from migrate.engine.plan import Plan

YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed without a TTY).")
]


def _ask(question: str, as_json: bool, hint: str) -> bool:
    from migrate.cli.output import interactive
    from migrate.errors import RefusedError

    if as_json or not interactive():
        raise RefusedError("confirmation needed, and there is no terminal to ask on", hint=hint)
    return typer.confirm(question, default=False, err=True)


def apply(
    ctx: typer.Context,
    phase: Annotated[int, typer.Option("--phase", min=1, help="The phase to apply.", metavar="N")],
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Only this task (repeatable).", metavar="TASK"),
    ] = None,
    yes: YesOption = False,
    force: Annotated[
        bool, typer.Option("--force", help="Apply even though the previous phase is not done.")
    ] = False,
    base_image: BaseImageOption = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            min=1,
            help="Independent changes of a task (image builds) at a time (default: cores, max 4).",
        ),
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Apply a phase: show its plan, ask, then make the changes and journal each."""
    from migrate import api
    from migrate.cli.output import ConsoleReporter, out, print_json
    from migrate.cli.plan import print_plan

    as_json = json_mode(output)
    use_base_image(base_image)

    def confirm(the_plan: Plan) -> bool:
        if not as_json:
            print_plan(the_plan)
        if yes:
            return True
        final = [c for c in the_plan.changes if c.pending and not c.reversible]
        if final and not _ask(  # asked on its own, before the usual question
            f"{len(final)} of these changes cannot be undone by `migrate rollback` "
            "(marked above). Make them anyway?",
            as_json,
            "review `migrate plan` (changes marked `cannot be undone`), then pass --yes",
        ):
            return False
        return _ask(
            f"Apply these changes to phase {phase}?",
            as_json,
            "review `migrate plan`, then pass --yes",
        )

    with ConsoleReporter() as reporter:
        result = api.apply(
            project_dir(ctx),
            phase,
            only=only,
            force=force,
            confirm=confirm,
            reporter=reporter,
            jobs=jobs,
        )
    if as_json:
        print_json(result.to_dict())
    console = out()
    if not result.confirmed:
        if not as_json:
            console.print("Apply cancelled: nothing was changed.")
        raise typer.Exit(1)
    if as_json:
        return
    if result.run is None:
        console.print(f"Nothing to do: phase {phase} is up to date.")
        _print_checks(result)
        return

    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"Applied phase {phase} (run {result.run.run_id})")
    for column in ("task", "changed", "already done", "unchanged", "seconds"):
        table.add_column(column, justify="left" if column == "task" else "right")
    for task in result.run.tasks:
        table.add_row(
            escape(task.task),
            str(len(task.applied)),
            str(len(task.resumed)),
            str(task.unchanged),
            f"{task.seconds:.2f}",
        )
    console.print(table)
    _print_checks(result)


def _print_checks(result: api.ApplyResult) -> None:
    """The phase's checks, run after applying: what is done now, and what is not."""
    from migrate.cli.verify import print_checks

    if result.checks is not None:
        progress = {result.checks.phases[0].id: result.progress} if result.progress else None
        print_checks(result.checks, title="Checks of", progress=progress)


def rollback(
    ctx: typer.Context,
    phase: Annotated[
        int | None,
        typer.Option(
            "--phase",
            min=1,
            help="The phase to roll back (default: the last applied).",
            metavar="N",
        ),
    ] = None,
    yes: YesOption = False,
    force: Annotated[
        bool, typer.Option("--force", help="Roll back even though a later phase is applied.")
    ] = False,
    output: OutputOption = Output.table,
) -> None:
    """Undo a phase's journaled changes, newest first (default: the last applied phase)."""
    from rich.markup import escape

    from migrate import api
    from migrate.cli.output import ConsoleReporter, out, print_json

    as_json = json_mode(output)
    console = out()

    def confirm(number: int, steps: list[str]) -> bool:
        if not as_json:
            console.print(f"[bold]Rolling back phase {number}[/] undoes, in this order:")
            for step in steps:
                console.print(f"  [red]-[/] {escape(step)}")
        return yes or _ask(
            f"Roll back phase {number}?",
            as_json,
            "review the list of changes above (or `migrate status`), then pass --yes",
        )

    with ConsoleReporter() as reporter:
        result = api.rollback(
            project_dir(ctx), phase, force=force, confirm=confirm, reporter=reporter
        )
    if result is None:
        if as_json:
            print_json({"version": 1, "confirmed": False, "undone": []})
        else:
            console.print("Rollback cancelled: nothing was changed.")
        raise typer.Exit(1)
    if as_json:
        print_json({**result.to_dict(), "confirmed": True})
        return
    console.print(f"Rolled back phase {result.phase}: {len(result.undone)} change(s) undone.")
    for line in result.not_restored:
        console.print(f"[yellow]not restored:[/] {escape(line)}", soft_wrap=True)
