"""`migrate data`: the application's file data into PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from migrate.cli.common import OutputOption, json_mode, project_dir
from migrate.cli.output import Output

if TYPE_CHECKING:
    from migrate.data.loader import LoadInterrupted, LoadResult

app = typer.Typer(
    help="Load the application's file data into PostgreSQL, verify it, roll it back.",
    no_args_is_help=True,
)

DatasetOption = Annotated[
    list[str] | None,
    typer.Option("--dataset", help="Only this dataset (repeatable).", metavar="NAME"),
]
DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="PostgreSQL URL; overrides MIGRATE_DATABASE_URL and target.database_url "
        "(default: an embedded server under .migrate/postgres).",
        metavar="URL",
        show_default=False,
    ),
]


@app.command("load")
def load(
    ctx: typer.Context,
    dataset: DatasetOption = None,
    database_url: DatabaseOption = None,
    output: OutputOption = Output.table,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            min=1,
            metavar="N",
            help="Files loaded at a time, each on its own connection (default: 4).",
        ),
    ] = None,
) -> None:
    """Load every dataset into PostgreSQL; unchanged files are skipped."""
    from migrate import api
    from migrate.cli.output import ConsoleReporter, print_json
    from migrate.data.loader import LoadInterrupted

    as_json = json_mode(output)
    try:
        with ConsoleReporter() as reporter:
            result = api.data_load(
                project_dir(ctx),
                dataset,
                database_url=database_url,
                reporter=reporter,
                workers=jobs,
            )
    except LoadInterrupted as stopped:
        print_interrupted(stopped)
        raise typer.Exit(130) from None
    except KeyboardInterrupt:
        from migrate.cli.output import err

        err().print("interrupted before any file was loaded; nothing was changed.")
        raise typer.Exit(130) from None
    if as_json:
        print_json(result.to_dict())
    else:
        print_load(result)


def print_interrupted(stopped: LoadInterrupted) -> None:
    """Ctrl-C: what was kept, what was rolled back, and how to go on (on stderr)."""
    from rich.markup import escape

    from migrate.cli.output import err

    rows = sum(d.loaded for d in stopped.result.datasets)
    rejected = sum(d.rejected for d in stopped.result.datasets)
    pending = sum(d.pending for d in stopped.result.datasets)
    lines = [
        f"[yellow]interrupted:[/] {stopped.files_loaded} file(s) loaded and kept "
        f"({rows} rows, {rejected} rejects)."
    ]
    if stopped.rolled_back:
        lines.append(
            "rolled back (nothing of it was kept): " + escape(", ".join(stopped.rolled_back))
        )
    lines.append(
        f"{pending} file(s) not loaded. Run `migrate data load` again to resume: "
        "files already loaded are skipped."
    )
    err().print("\n".join(lines), soft_wrap=True)


def print_load(result: LoadResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    from migrate.cli.output import out

    table = Table(title=f"data load into schema {escape(result.schema)}")
    columns = ("dataset", "table", "files", "records", "loaded", "rejected", "skipped files", "s")
    for column in columns:
        table.add_column(column, justify="left" if column in ("dataset", "table") else "right")
    for item in result.datasets:
        table.add_row(
            escape(item.dataset),
            escape(item.table) + (" [green](new)[/]" if item.created else ""),
            str(item.files),
            str(item.records),
            str(item.loaded),
            f"[yellow]{item.rejected}[/]" if item.rejected else "0",
            str(item.skipped_files),
            f"{item.seconds:.2f}",
        )
    out().print(table)
    rejected = sum(item.rejected for item in result.datasets)
    if rejected:
        out().print(
            f"[yellow]{rejected} record(s) rejected[/]: see "
            f"{escape(result.schema)}._migrate_rejects (reason and raw bytes of each)."
        )


@app.command("verify", short_help="Compare the source files with the database.")
def verify(
    ctx: typer.Context,
    dataset: DatasetOption = None,
    database_url: DatabaseOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Compare the source files with the database, record by record; exit 1 on a difference."""
    from rich.markup import escape
    from rich.table import Table

    from migrate import api
    from migrate.cli.output import ConsoleReporter, out, print_json

    as_json = json_mode(output)
    with ConsoleReporter() as reporter:
        result = api.data_verify(
            project_dir(ctx), dataset, database_url=database_url, reporter=reporter
        )
    if as_json:
        print_json(result.to_dict())
    else:
        table = Table(title=f"data verify, schema {escape(result.schema)}")
        for column in ("dataset", "table", "records", "rows", "ok"):
            table.add_column(column, justify="right" if column in ("records", "rows") else "left")
        for check in result.datasets:
            table.add_row(
                escape(check.dataset),
                escape(check.table),
                str(check.records),
                str(check.rows),
                "[green]yes[/]" if check.ok else "[red]no[/]",
            )
        console = out()
        console.print(table)
        for check in result.datasets:
            for problem in check.problems():
                console.print(f"[red]{escape(check.dataset)}[/]: {escape(problem)}")
            for example in check.examples:
                console.print(f"  [dim]{escape(example)}[/]")
        console.print(
            "[green]Source and database agree.[/]" if result.ok else "[red]Differences found.[/]"
        )
    if not result.ok:
        raise typer.Exit(1)


@app.command("rollback", short_help="Remove exactly what data load created.")
def rollback(
    ctx: typer.Context,
    dataset: DatasetOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    database_url: DatabaseOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Remove exactly what data load created: its tables, bookkeeping and schema."""
    from rich.markup import escape

    from migrate import api
    from migrate.cli.apply import _ask
    from migrate.cli.output import out, print_json

    as_json = json_mode(output)
    console = out()

    def confirm(listing: list[str]) -> bool:
        if not as_json:
            console.print("[bold]data rollback[/] will:")
            for line in listing:
                console.print(f"  [red]-[/] {escape(line)}")
        return yes or _ask("Drop these?", as_json, "review the list above, then pass --yes")

    result = api.data_rollback(
        project_dir(ctx), dataset, database_url=database_url, confirm=confirm
    )
    if result is None:
        if not as_json:
            console.print("Rollback cancelled: nothing was changed.")
        raise typer.Exit(1)
    if as_json:
        print_json(result.to_dict())
        return
    console.print(
        f"Dropped {len(result.dropped)} table(s)"
        + (f" and schema {escape(result.schema)}." if result.dropped_schema else ".")
    )
    for note in result.kept:
        console.print(f"[yellow]kept[/] {escape(note)}")
