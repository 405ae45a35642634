"""`migrate render` and the whole-set checks of `migrate plan`, over a project directory."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from migrate.engine.context import Context
    from migrate.engine.plan import Plan
    from migrate.manifests.lint import LintReport
    from migrate.manifests.model import PhaseManifests
    from migrate.manifests.validate import ValidationReport

DEFAULT_RENDER_DIR = Path("manifests")


@dataclass(frozen=True)
class RenderResult:
    out_dir: Path
    phases: list[PhaseManifests]
    files: list[Path]
    validation: ValidationReport
    diagram: Path | None = None
    lint: LintReport | None = None  # the whole-set checks (migrate.manifests.lint)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "out": str(self.out_dir),
            "phases": [
                {
                    "id": p.phase,
                    "dir": str(self.out_dir / f"phase-{p.phase}"),
                    "objects": [
                        {
                            "file": m.filename,
                            "apiVersion": m.api_version,
                            "kind": m.kind,
                            "name": m.name,
                            "namespace": m.namespace,
                            "task": m.task,
                        }
                        for m in p.manifests
                    ],
                    "helm_releases": [
                        {"file": r.filename, "name": r.name, "chart": r.chart, "version": r.version}
                        for r in p.releases
                    ],
                }
                for p in self.phases
            ],
            "validation": self.validation.to_dict(),
            "diagram": str(self.diagram) if self.diagram else None,
            "findings": [f.to_dict() for f in self.lint.findings] if self.lint else [],
        }


def render(
    project_dir: Path,
    phase: int | None = None,
    *,
    out: Path | None = None,
    diagram: bool = False,
    minimum_failure_severity: str = "error",
    skip_checks: tuple[str, ...] | list[str] = (),
) -> RenderResult:
    """Render, validate and write the manifests of each phase to `out/phase-N/`
    (default `manifests/` in the project); see `migrate.api.render`."""
    from migrate.manifests import lint
    from migrate.manifests.diagram import mermaid
    from migrate.manifests.render import render_project, write
    from migrate.manifests.validate import validate
    from migrate.project import open_context

    ctx = open_context(project_dir)
    if phase:
        ctx.roadmap.phase(phase)  # an unknown phase is an error, as before
    everything = render_project(ctx)
    phases = [p for p in everything if not phase or p.phase == phase]
    report = validate(
        [m for p in phases for m in p.manifests], ctx.config.target.kubernetes_version
    )
    findings = lint.check(everything, skip_checks).for_phases([phase] if phase else None)
    lint.raise_for(findings, minimum_failure_severity)
    out_dir = out if out is not None else project_dir / DEFAULT_RENDER_DIR
    files = write(phases, out_dir)
    picture = None
    if diagram:
        picture = out_dir / "architecture.md"
        picture.write_text(
            "# Target architecture\n\nDrawn by `migrate render --diagram` from the rendered "
            "objects.\n\n```mermaid\n" + mermaid(phases) + "```\n",
            encoding="utf-8",
        )
    return RenderResult(
        out_dir=out_dir,
        phases=phases,
        files=files,
        validation=report,
        diagram=picture,
        lint=findings,
    )


def with_checks(
    ctx: Context,
    the_plan: Plan,
    phase: int | None = None,
    skip_checks: tuple[str, ...] | list[str] = (),
) -> Plan:
    """`the_plan` carrying the whole-set checks of every phase's rendered manifests,
    reported for `phase` when one is given."""
    from migrate.manifests import lint

    report = lint.check(lint.rendered_set(ctx), skip_checks)
    return dataclasses.replace(the_plan, lint=report.for_phases([phase] if phase else None))
