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
    from migrate.cli.output import err, escape, print_markup

    lines: list[str] = []
    if not report.findings:
        lines.append(f"[green]whole-set checks:[/] no findings ({len(report.rules)} rules)")
    else:
        lines.append(
            f"\n[bold]Whole-set checks:[/] {len(report.errors)} error(s), "
            f"{len(report.warnings)} warning(s)"
        )
    for finding in report.findings:
        style = "red" if finding.severity == "error" else "yellow"
        lines.append(
            f"  [{style}]{finding.severity}[/] [bold]{escape(finding.rule)}[/] "
            f"{escape(finding.object)} [dim]({escape(finding.file)})[/]"
        )
        lines.append(f"      {escape(finding.message)}")
        lines.append(f"      [dim]fix:[/] {escape(finding.fix)}")
        if finding.source:
            lines.append(f"      [dim]source: {escape(finding.source)}[/]")
    # one print: the same text as a print per line, and Rich only when it changes it
    if stderr:
        err().print("\n".join(lines))
    else:
        print_markup("\n".join(lines))
