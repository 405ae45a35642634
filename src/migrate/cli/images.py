"""`migrate images`: one container image per plugin and the orchestrator's, built with the
Docker SDK. `--plugin NAME` and `--orchestrator` select (with neither: every image);
`--no-orchestrator` leaves the orchestrator out."""

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
    from migrate.images.verbs import BuildResult

app = typer.Typer(
    help="Build, list and remove the container images of the plugins and the orchestrator "
    "(Docker at DOCKER_HOST).",
    no_args_is_help=True,
)

PluginOption = Annotated[
    list[str] | None,
    typer.Option("--plugin", help="Only this plugin (repeatable).", metavar="NAME"),
]
OrchestratorOption = Annotated[
    bool | None,
    typer.Option(
        "--orchestrator/--no-orchestrator",
        help="--orchestrator: the orchestrator's image too (alone when no --plugin is given); "
        "--no-orchestrator: never it. Default: with it unless --plugin is given.",
        show_default=False,
    ),
]


@app.command("build", short_help="Build the plugin and orchestrator images (unchanged: skipped).")
def build(
    ctx: typer.Context,
    plugin: PluginOption = None,
    orchestrator: OrchestratorOption = None,
    push: Annotated[bool, typer.Option("--push", help="Push to target.registry.")] = False,
    jobs: Annotated[
        int | None, typer.Option("--jobs", min=1, help="Builds at a time (default: cores, max 4).")
    ] = None,
    base_image: BaseImageOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Build one image per plugin and the orchestrator's; an image whose tag exists is not
    rebuilt."""
    from migrate import api
    from migrate.cli.output import ConsoleReporter, print_json

    as_json = json_mode(output)
    use_base_image(base_image)
    with ConsoleReporter() as reporter:
        result = api.images_build(
            project_dir(ctx),
            plugin,
            orchestrator=orchestrator,
            push=push,
            jobs=jobs,
            reporter=reporter,
        )
    if as_json:
        print_json(result.to_dict())
    else:
        _print_build(result)
    _fail_on_errors(result, as_json)


def _print_build(result: BuildResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    from migrate.cli.output import out

    table = Table(title="Images", title_justify="left")
    for column in ("plugin", "image", "result", "seconds"):
        table.add_column(
            column,
            justify="right" if column == "seconds" else "left",
            overflow="fold" if column == "image" else "ellipsis",
        )
    for outcome in result.images:
        if outcome.error is not None:
            state = "[red]failed[/]"
        elif outcome.built:
            state = "[green]built[/]" + (" + pushed" if outcome.pushed else "")
        else:
            state = "up to date" + (" + pushed" if outcome.pushed else "")
        table.add_row(
            _name(outcome.plugin), escape(outcome.image or "-"), state, f"{outcome.seconds:.2f}"
        )
    out().print(table)


def _name(plugin: str | None) -> str:
    """A plugin's name, or `(orchestrator)` (parenthesised: no plugin is taken for it)."""
    from rich.markup import escape

    return escape(plugin) if plugin is not None else "[bold](orchestrator)[/]"


def _fail_on_errors(result: BuildResult, as_json: bool) -> None:
    """Show each failure with its build log on stderr, then exit 1."""
    error = result.error()
    if error is None:
        return
    from rich.markup import escape

    from migrate.cli.output import err

    console = err()
    for outcome in result.failures:
        if outcome.error is not None and outcome.error.log:
            console.print(f"[bold]build log of {escape(outcome.name)}[/] (last lines):")
            console.print(escape(outcome.error.log), soft_wrap=True)
    if as_json:  # the JSON document is printed already: no second one for the error
        console.print(f"[bold red]error:[/] {escape(error.render())}", soft_wrap=True)
        raise typer.Exit(1)
    raise error


@app.command("list", short_help="List the project's images in the engine.")
def list_images(
    ctx: typer.Context,
    plugin: PluginOption = None,
    orchestrator: OrchestratorOption = None,
    output: OutputOption = Output.table,
) -> None:
    """List the project's images in the engine (current = the tag of the present content)."""
    from migrate import api
    from migrate.cli.output import out, print_json

    as_json = json_mode(output)
    result = api.images_list(project_dir(ctx), plugin, orchestrator=orchestrator)
    if as_json:
        print_json(result.to_dict())
        return
    from rich.markup import escape
    from rich.table import Table

    if not result.images:
        out().print("No images yet: `migrate images build` builds them.")
        return
    table = Table(title="Images", title_justify="left")
    for column in ("plugin", "image", "current", "created", "MB"):
        table.add_column(
            column,
            justify="right" if column == "MB" else "left",
            overflow="fold" if column == "image" else "ellipsis",
            no_wrap=column == "created",
        )
    for image in result.images:
        table.add_row(
            _name(image.plugin),
            escape(image.image),
            "[green]yes[/]" if image.current else "no",
            image.created[:16].replace("T", " "),
            f"{image.size / 1e6:.1f}",
        )
    out().print(table)


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    plugin: PluginOption = None,
    orchestrator: OrchestratorOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Remove the image tags that builds created, and only those."""
    from migrate import api
    from migrate.cli.output import ConsoleReporter, out, print_json

    as_json = json_mode(output)
    with ConsoleReporter() as reporter:
        result = api.images_rollback(
            project_dir(ctx), plugin, orchestrator=orchestrator, reporter=reporter
        )
    if as_json:
        print_json(result.to_dict())
        return
    from rich.markup import escape

    console = out()
    if not result.removed and not result.missing:
        console.print("Nothing to roll back: no image tag created by migrate is recorded.")
        return
    for item in result.removed:
        console.print(f"removed {escape(item.image)} ({escape(item.name)})")
    for item in result.missing:
        console.print(f"already gone: {escape(item.image)} ({escape(item.name)})")
