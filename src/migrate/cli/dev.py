"""`migrate dev`: the migrated system on the local Docker engine."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Annotated

import typer

from migrate.cli.common import OutputOption, json_mode, project_dir
from migrate.cli.output import Output

if TYPE_CHECKING:
    from migrate.dev.verbs import StatusResult, UpResult

app = typer.Typer(
    help="Run the migrated system locally: orchestrator, a worker and a service per plugin, "
    "Redis and PostgreSQL, as containers on the Docker engine at DOCKER_HOST.",
    no_args_is_help=True,
)


class NetworkMode(enum.StrEnum):
    host = "host"
    bridge = "bridge"


@app.command("up", short_help="Start the containers (or bring them up to date) and wait.")
def up(
    ctx: typer.Context,
    network: Annotated[
        NetworkMode | None,
        typer.Option(
            "--network",
            help="host: every container listens on 127.0.0.1 on a free port; bridge: a "
            "network of their own, ports published on 127.0.0.1 (default: dev.network).",
            show_default=False,
        ),
    ] = None,
    bus_url: Annotated[
        str | None,
        typer.Option(
            "--bus-url",
            help="A Redis that already runs (redis://HOST:PORT/DB); default: start a Redis "
            "container from dev.redis_image.",
            metavar="URL",
            show_default=False,
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="A PostgreSQL that already runs, for the orchestrator's runs; default: start "
            "a PostgreSQL container from dev.postgres_image.",
            metavar="URL",
            show_default=False,
        ),
    ] = None,
    plugin: Annotated[
        list[str] | None,
        typer.Option("--plugin", help="Only this plugin (repeatable).", metavar="NAME"),
    ] = None,
    pull: Annotated[
        bool,
        typer.Option("--pull", help="Pull the Redis and PostgreSQL images when missing."),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", min=1, metavar="S", help="Seconds to wait for every container to be ready."
        ),
    ] = 180.0,
    output: OutputOption = Output.table,
) -> None:
    """Build missing images, start the containers (keeping the ones that match), and wait
    until each answers /readyz. `migrate dev down` removes them."""
    from migrate import api
    from migrate.cli.output import ConsoleReporter, print_json

    as_json = json_mode(output)
    with ConsoleReporter() as reporter:
        result = api.dev_up(
            project_dir(ctx),
            network=network.value if network else None,
            bus_url=bus_url,
            database_url=database_url,
            plugins=plugin,
            pull=pull,
            timeout=timeout,
            reporter=reporter,
        )
    if as_json:
        print_json(result.to_dict())
    else:
        _print_up(result)


def _print_up(result: UpResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    from migrate.cli.output import out

    table = Table(title=f"dev environment of {escape(result.project)}", title_justify="left")
    for column in ("container", "role", "plugin", "url", "ready", "action"):
        table.add_column(column, overflow="fold" if column == "url" else "ellipsis")
    for c in result.containers:
        table.add_row(
            escape(c.name),
            c.role,
            escape(c.plugin or "-"),
            escape(c.url),
            "[green]yes[/]" if c.ready else "[red]no[/]",
            c.action,
        )
    console = out()
    console.print(table)
    console.print(f"orchestrator: {escape(result.orchestrator)}")


@app.command("status", short_help="Containers, readiness, consumer lag, dead letters.")
def status(ctx: typer.Context, output: OutputOption = Output.table) -> None:
    """Show each container (state, restarts, readiness), each worker's consumer lag and
    the dead letters per event type."""
    from migrate import api
    from migrate.cli.output import ConsoleReporter, print_json

    as_json = json_mode(output)
    with ConsoleReporter() as reporter:
        result = api.dev_status(project_dir(ctx), reporter=reporter)
    if as_json:
        print_json(result.to_dict())
    else:
        _print_status(result)


def _print_status(result: StatusResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    from migrate.cli.output import out

    console = out()
    if not result.containers:
        console.print("No dev containers: `migrate dev up` starts them.")
        return
    table = Table(title="containers", title_justify="left")
    for column in ("container", "role", "state", "restarts", "ready", "url"):
        table.add_column(column, overflow="fold" if column == "url" else "ellipsis")
    for c in result.containers:
        table.add_row(
            escape(c.name),
            c.role,
            c.state,
            str(c.restarts),
            "[green]yes[/]" if c.ready else f"[red]no[/] {escape(c.reason)}",
            escape(c.url),
        )
    console.print(table)
    if result.workers:
        workers = Table(title="workers", title_justify="left")
        for column in ("plugin", "group", "consumes", "lag"):
            workers.add_column(column, justify="right" if column == "lag" else "left")
        for w in result.workers:
            lag = "?" if w.lag is None else str(w.lag)
            workers.add_row(escape(w.plugin), escape(w.group), escape(",".join(w.types)), lag)
        console.print(workers)
    dead = [d for d in result.dead_letters if d.count]
    if dead:
        letters = Table(title="dead letters", title_justify="left")
        for column in ("type", "count", "last reason"):
            letters.add_column(column, justify="right" if column == "count" else "left")
        for d in dead:
            letters.add_row(escape(d.type), str(d.count), escape(d.last_reason or ""))
        console.print(letters)
    elif result.bus_error is None and result.dead_letters:
        console.print("No dead letters.")


@app.command("down", short_help="Remove the containers and .migrate/dev.json.")
def down(ctx: typer.Context, output: OutputOption = Output.table) -> None:
    """Remove every container of the project's dev environment (by label, so also what a
    failed `up` left), its network and .migrate/dev.json. Running it twice is harmless."""
    from migrate import api
    from migrate.cli.output import ConsoleReporter, out, print_json

    as_json = json_mode(output)
    with ConsoleReporter() as reporter:
        result = api.dev_down(project_dir(ctx), reporter=reporter)
    if as_json:
        print_json(result.to_dict())
        return
    from rich.markup import escape

    console = out()
    if not result.removed:
        console.print("Nothing to remove: no dev container of this project.")
    for name in result.removed:
        console.print(f"removed {escape(name)}")
