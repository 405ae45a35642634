"""`migrate bench`: the legacy code in-process against each plugin's container, under load."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from migrate.cli.common import OutputOption, json_mode, project_dir, resolve
from migrate.cli.compare import InputsOption, PluginOption
from migrate.cli.output import Output

if TYPE_CHECKING:
    from migrate.compare.verbs import BenchResult


def bench(
    ctx: typer.Context,
    plugin: PluginOption = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=1024, help="Requests in flight at a time.")
    ] = 4,
    duration: Annotated[
        float,
        typer.Option(
            "--duration", min=0.1, max=3600, help="Seconds per plugin and side.", metavar="SECONDS"
        ),
    ] = 5.0,
    inputs: InputsOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Replay the corpus at a fixed concurrency against the legacy code in-process (the
    baseline) and against the plugin's container: requests/s, p50/p95/p99 and errors. Exit 1
    when a plugin is over a budget of `performance:` in migrate.yaml, or has errors."""
    from migrate import api
    from migrate.cli.output import ConsoleReporter, print_json

    as_json = json_mode(output)
    with ConsoleReporter() as reporter:
        result = api.bench(
            project_dir(ctx),
            plugin,
            concurrency=concurrency,
            duration=duration,
            inputs=resolve(ctx, inputs) if inputs else None,
            reporter=reporter,
        )
    if as_json:
        print_json(result.to_dict())
    else:
        print_bench(result)
    if not result.ok:
        raise typer.Exit(1)


def print_bench(result: BenchResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    from migrate.cli.output import out

    console = out()
    table = Table(
        title=f"Bench: concurrency {result.concurrency}, {result.duration:g} s a side",
        title_justify="left",
    )
    for column in ("plugin", "side", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "p95 ratio"):
        table.add_column(column, justify="left" if column in ("plugin", "side") else "right")
    for p in result.plugins:
        ratio = p.p95_ratio
        for side, stats in (("legacy", p.legacy), ("migrated", p.migrated)):
            table.add_row(
                escape(p.plugin) if side == "legacy" else "", side, f"{stats.rps:.0f}",
                f"{stats.p50_ms:.2f}", f"{stats.p95_ms:.2f}", f"{stats.p99_ms:.2f}",
                f"[red]{stats.errors}[/]" if stats.errors else "0",
                (f"{ratio:.1f}" if ratio is not None else "-") if side == "migrated" else "",
            )  # fmt: skip
    console.print(table)
    for p in result.plugins:
        for reason in p.over:
            console.print(f"[bold red]{escape(p.plugin)}[/]: {escape(reason)}")
    if result.ok:
        console.print("[green]every plugin is within its budgets[/]")
