"""`migrate verify` and `migrate ci` as functions over a project directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from migrate.reporting import Reporter

if TYPE_CHECKING:
    from migrate.engine.plan import Plan
    from migrate.verify.model import VerifyReport


def verify(
    project_dir: Path,
    phase: int | None = None,
    *,
    junit_xml: Path | None = None,
    timeout: float | None = None,
    reporter: Reporter | None = None,
) -> VerifyReport:
    """Run every check of the phase's tasks (default all phases), holding the project
    lock, and record which tasks are done; `junit_xml` also writes a JUnit report."""
    from migrate.project import open_context
    from migrate.state.lock import ProjectLock
    from migrate.verify import junit, runner

    ctx = open_context(project_dir, reporter, journal=True)
    with ProjectLock(ctx.state_dir, "verify"):  # it records which tasks are done
        result = runner.verify(
            ctx, [phase] if phase else None, timeout=timeout or runner.DEFAULT_TIMEOUT
        )
    if junit_xml is not None:
        junit.write(result, junit_xml)
    return result


@dataclass(frozen=True)
class CiResult:
    plan: Plan
    checks: VerifyReport
    exit_code: int  # 0 all verified, nothing pending; 2 changes pending, checks pass; 1 failed
    summary: str  # Markdown, for $GITHUB_STEP_SUMMARY


def ci(
    project_dir: Path,
    phase: int | None = None,
    *,
    plan_json: Path | None = None,
    junit_xml: Path | None = None,
    timeout: float | None = None,
    reporter: Reporter | None = None,
) -> CiResult:
    """The pipeline step: validate the roadmap, plan, run the checks (holding the
    project lock), write the reports. Never asks anything."""
    import json

    from migrate.engine.plan import build_plan
    from migrate.project import open_context
    from migrate.report import summary
    from migrate.state.lock import ProjectLock
    from migrate.verify import junit, runner

    ctx = open_context(project_dir, reporter, journal=True)  # validates config and roadmap
    phases = [phase] if phase else None
    the_plan = build_plan(ctx, phases)
    if plan_json is not None:
        plan_json.parent.mkdir(parents=True, exist_ok=True)
        plan_json.write_text(json.dumps(the_plan.to_dict(), indent=2) + "\n", encoding="utf-8")
    with ProjectLock(ctx.state_dir, "ci"):  # verifying records which tasks are done
        checks = runner.verify(ctx, phases, timeout=timeout or runner.DEFAULT_TIMEOUT)
    if junit_xml is not None:
        junit.write(checks, junit_xml)
    code = 1 if not checks.passed else 2 if the_plan.has_changes else 0
    text = summary.markdown(ctx.config.project, the_plan, checks, code)
    return CiResult(plan=the_plan, checks=checks, exit_code=code, summary=text)
