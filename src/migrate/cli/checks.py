"""The whole-set checks' options and printing, shared by `plan` and `render`."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from migrate.manifests.lint import LintReport


class MinimumSeverity(StrEnum):
    error = "error"
    warning = "warning"
    none = "none"


MinimumSeverityOption = Annotated[
    MinimumSeverity,
    typer.Option(
        "--minimum-failure-severity",
        help="Findings of the whole-set checks at this severity or above fail the command "
        "(none: report only).",
        case_sensitive=False,
    ),
]
SkipCheckOption = Annotated[
    list[str] | None,
    typer.Option(
        "--skip-check",
        help="Leave out this whole-set check (its id, e.g. quota-fits); repeatable.",
        metavar="RULE",
    ),
]


def print_findings(report: LintReport, *, stderr: bool = False) -> None:
    """Each finding with its object, file, message, fix and source."""
    from rich.markup import escape

    from migrate.cli.output import err, out

    console = err() if stderr else out()
    if not report.findings:
        console.print(f"[green]whole-set checks:[/] no findings ({len(report.rules)} rules)")
        return
    console.print(
        f"\n[bold]Whole-set checks:[/] {len(report.errors)} error(s), "
        f"{len(report.warnings)} warning(s)"
    )
    for finding in report.findings:
        style = "red" if finding.severity == "error" else "yellow"
        console.print(
            f"  [{style}]{finding.severity}[/] [bold]{escape(finding.rule)}[/] "
            f"{escape(finding.object)} [dim]({escape(finding.file)})[/]"
        )
        console.print(f"      {escape(finding.message)}")
        console.print(f"      [dim]fix:[/] {escape(finding.fix)}")
        if finding.source:
            console.print(f"      [dim]source: {escape(finding.source)}[/]")
