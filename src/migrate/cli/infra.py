"""`migrate infra`: preview, up and destroy a phase's stack through the Pulumi Automation API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from migrate.cli.common import OutputOption, json_mode, project_dir
from migrate.cli.output import Output

app = typer.Typer(
    help="Provision a phase's resources through the Pulumi Automation API "
    "(one stack per phase; needs the pulumi CLI and a reachable cluster).",
    no_args_is_help=True,
)

PhaseOption = Annotated[
    int | None,
    typer.Option("--phase", min=1, help="The phase whose stack to use.", metavar="N"),
]
YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed without a TTY).")
]


def _run(
    ctx: typer.Context, verb: str, phase: int | None, output: Output, yes: bool = True
) -> None:
    from migrate import api
    from migrate.cli.output import ConsoleReporter, out, print_json
    from migrate.errors import UserError

    as_json = json_mode(output)
    directory = project_dir(ctx)
    if phase is None:
        if verb != "preview":
            raise UserError(
                f"`migrate infra {verb}` needs the phase: --phase N",
                hint="`migrate status` lists the phases",
            )
        from migrate.project import load

        phases = [p.id for p in load(directory)[1].phases]
    else:
        phases = [phase]
    documents = []
    for number in phases:
        with ConsoleReporter() as reporter:
            result = api.infra(
                directory,
                verb,  # type: ignore[arg-type]
                number,
                confirm=None if yes else _asker(verb, number, as_json),
                reporter=reporter,
            )
        if result is None:
            raise typer.Exit(1)
        documents.append(result.to_dict())
        if not as_json:
            counts = ", ".join(f"{n} {op}" for op, n in sorted(result.summary.items()) if n)
            out().print(f"stack {result.stack}: {verb} {counts or 'no changes'}")
    if as_json:
        print_json({"version": 1, "stacks": documents})


def _asker(verb: str, phase: int, as_json: bool) -> Callable[[], bool]:
    def ask() -> bool:
        from migrate.cli.output import interactive
        from migrate.errors import RefusedError

        if as_json or not interactive():
            raise RefusedError(
                "confirmation needed, and there is no terminal to ask on",
                hint="review `migrate infra preview`, then pass --yes",
            )
        question = {
            "up": f"Provision phase {phase} through Pulumi?",
            "destroy": f"Destroy phase {phase}'s stack (its state is exported first; "
            "Namespaces, PVCs and stateful resources are kept unless pulumi.keep_data is false)?",
            "cancel": f"Cancel the running update of phase {phase}'s stack (only when none is "
            "really running: a cancelled update can leave pending operations)?",
        }[verb]
        return typer.confirm(question, default=False, err=True)

    return ask


@app.command("preview", short_help="Show what Pulumi would change.")
def preview(
    ctx: typer.Context, phase: PhaseOption = None, output: OutputOption = Output.table
) -> None:
    """Show what Pulumi would change for a phase's rendered objects (default: every phase)."""
    _run(ctx, "preview", phase, output)


@app.command("up", short_help="Provision a phase's objects and Helm releases.")
def up(
    ctx: typer.Context,
    phase: PhaseOption = None,
    yes: YesOption = False,
    output: OutputOption = Output.table,
) -> None:
    """Provision a phase's rendered objects and Helm releases (its stack)."""
    _run(ctx, "up", phase, output, yes)


@app.command("destroy")
def destroy(
    ctx: typer.Context,
    phase: PhaseOption = None,
    yes: YesOption = False,
    output: OutputOption = Output.table,
) -> None:
    """Destroy a phase's stack: delete everything it provisioned."""
    _run(ctx, "destroy", phase, output, yes)


@app.command("cancel", short_help="Release a stack's lock after an interrupted update.")
def cancel(
    ctx: typer.Context,
    phase: PhaseOption = None,
    yes: YesOption = False,
    output: OutputOption = Output.table,
) -> None:
    """Cancel the running update of a phase's stack (`pulumi cancel`): after an interrupted
    `apply` or `infra up` left the stack locked."""
    _run(ctx, "cancel", phase, output, yes)
