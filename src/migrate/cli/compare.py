"""`migrate compare`: replay recorded inputs through the legacy code and the images."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from migrate.cli.common import OutputOption, json_mode, project_dir, resolve
from migrate.cli.output import Output

if TYPE_CHECKING:
    from migrate.compare.verbs import CompareResult

PluginOption = Annotated[
    list[str] | None,
    typer.Option("--plugin", help="Only this plugin (repeatable).", metavar="NAME"),
]
InputsOption = Annotated[
    Path | None,
    typer.Option(
        "--inputs",
        help='JSON Lines of {"plugin", "input"} to replay instead of the `replay:` dataset.',
        metavar="FILE",
    ),
]


def compare(
    ctx: typer.Context,
    plugin: PluginOption = None,
    sample: Annotated[
        int | None,
        typer.Option(
            "--sample", min=1, help="N inputs per plugin, spread over the corpus.", metavar="N"
        ),
    ] = None,
    inputs: InputsOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Run each recorded input through the legacy code twice (primary, secondary) and through
    the plugin's image (candidate). What differs between primary and secondary is noise; what
    differs beyond it is a difference. Exit 1 on any difference or error."""
    from migrate import api
    from migrate.cli.output import ConsoleReporter, print_json

    as_json = json_mode(output)
    with ConsoleReporter() as reporter:
        result = api.compare(
            project_dir(ctx),
            plugin,
            sample=sample,
            inputs=resolve(ctx, inputs) if inputs else None,
            reporter=reporter,
        )
    if as_json:
        print_json(result.to_dict())
    else:
        print_comparison(result)
    if not result.ok:
        raise typer.Exit(1)


def print_comparison(result: CompareResult) -> None:
    import json

    from rich.markup import escape
    from rich.table import Table

    from migrate.cli.output import out

    console = out()
    table = Table(title=f"Replayed {escape(result.corpus)}", title_justify="left")
    for column in (
        "plugin",
        "replayed",
        "equal",
        "different",
        "errors",
        "noise",
        "record",
        "ms/input",
    ):
        table.add_column(column, justify="left" if column in ("plugin", "noise") else "right")
    for p in result.plugins:
        state = "green" if p.ok else "red"
        table.add_row(
            f"[{state}]{escape(p.plugin)}[/]", str(p.replayed), str(p.equal),
            f"[red]{p.different}[/]" if p.different else "0",
            f"[red]{p.errors}[/]" if p.errors else "0",
            escape(", ".join(p.noise)) or "-",
            f"{p.recorded_match}/{p.recorded}" if p.recorded else "-",
            f"{1000 * p.seconds / p.replayed:.1f}" if p.replayed else "-",
        )  # fmt: skip
    console.print(table)
    for p in result.plugins:
        for example in p.examples:
            shown = json.dumps(example.input, ensure_ascii=False)[:300]
            console.print(
                f"[bold red]{escape(p.plugin)}[/]: different at "
                f"{escape(', '.join(p.differing_paths[:5]))}; example input "
                f"({escape(example.origin)}): {escape(shown)}"
            )
            for difference in example.diff[:10]:
                console.print(f"    {escape(difference.describe())}")
        for failure in p.failures:
            shown = json.dumps(failure.input, ensure_ascii=False)[:200]
            console.print(
                f"[bold red]{escape(p.plugin)}[/]: error on the {failure.side} side for "
                f"({escape(failure.origin)}) {escape(shown)}:"
                f"\n    {escape(failure.message)}"
            )
    verdict = (
        "[green]every replayed input gave the legacy answer[/]"
        if result.ok
        else ("[red]the migrated plugins do not give the legacy answers[/]")
    )
    console.print(verdict + f" ({result.seconds:.1f} s)")
