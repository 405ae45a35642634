"""`migrate render`: the manifests of each phase, validated, one file per object."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from migrate.cli.checks import MinimumSeverity, MinimumSeverityOption, SkipCheckOption
from migrate.cli.common import OutputOption, PhaseOption, json_mode, project_dir, resolve
from migrate.cli.output import Output

if TYPE_CHECKING:
    from migrate.api import RenderResult


def render(
    ctx: typer.Context,
    phase: PhaseOption = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Directory to write into (default: manifests/).", metavar="DIR"),
    ] = None,
    diagram: Annotated[
        bool,
        typer.Option(
            "--diagram", help="Also write DIR/architecture.md: a Mermaid picture of the objects."
        ),
    ] = False,
    output: OutputOption = Output.table,
    minimum_failure_severity: MinimumSeverityOption = MinimumSeverity.error,
    skip_check: SkipCheckOption = None,
) -> None:
    """Render each phase's Kubernetes manifests into DIR/phase-N/ (no cluster needed).

    Core objects are validated strictly against target.kubernetes_version and the
    newest Kubernetes the schema library knows; custom resources are listed as not
    schema-checked. Then the objects of every phase are checked as a set (selectors,
    ports, autoscalers, quota, runtime contract): findings at --minimum-failure-severity
    fail the render and nothing is written; the others are printed. Hand DIR/phase-N/ to
    `kubectl apply -f` or Argo CD, or let `migrate apply` provision it through Pulumi.
    """
    from migrate import api

    as_json = json_mode(output)
    result = api.render(
        project_dir(ctx),
        phase,
        out=resolve(ctx, out) if out else None,
        diagram=diagram,
        minimum_failure_severity=minimum_failure_severity.value,
        skip_checks=skip_check or [],
    )
    if as_json:
        from migrate.cli.output import print_json

        print_json(result.to_dict())
    else:
        print_render(result)


def print_render(result: RenderResult) -> None:
    from rich.markup import escape

    from migrate.cli.output import out

    console = out()
    for phase in result.phases:
        directory = result.out_dir / f"phase-{phase.phase}"
        console.print(
            f"[bold]phase {phase.phase}[/]: {len(phase.manifests)} objects, "
            f"{len(phase.releases)} Helm releases -> {escape(str(directory))}"
        )
    report = result.validation
    console.print(
        f"validated strictly: {len(report.checked)} core objects against Kubernetes "
        f"{' and '.join(report.versions)}"
    )
    if report.crd_checked:
        from migrate.manifests.validate import crd_source

        sources = sorted({crd_source(m) for m in report.crd_checked})
        console.print(
            f"validated strictly: {len(report.crd_checked)} custom resources against the "
            f"vendored {', '.join(sources)}"
        )
    if report.not_checked:
        console.print(
            f"[yellow]not schema-checked[/] ({len(report.not_checked)} custom resources):"
        )
        for manifest in report.not_checked:
            console.print(
                f"  phase-{manifest.phase}/{escape(manifest.filename)} "
                f"[dim]({escape(manifest.api_version)})[/]"
            )
    if result.diagram:
        console.print(f"diagram: {escape(str(result.diagram))}")
    if result.lint is not None:
        from migrate.cli.checks import print_findings

        print_findings(result.lint)
