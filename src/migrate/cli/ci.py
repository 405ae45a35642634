"""`migrate ci`: the pipeline step. No prompts; colour only on a terminal (Rich
decides); exit 0 all verified and nothing pending, 2 changes pending, 1 failed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from migrate.cli.common import PhaseOption, project_dir, resolve
from migrate.cli.verify import JunitOption, TimeoutOption

SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


def ci(
    ctx: typer.Context,
    phase: PhaseOption = None,
    junit_xml: JunitOption = None,
    plan_json: Annotated[
        Path | None, typer.Option("--plan-json", help="Write the JSON plan.", metavar="PATH")
    ] = None,
    timeout: TimeoutOption = None,
) -> None:
    """The pipeline step: validate, plan, verify, write reports; exit 0, 2 (pending) or 1."""
    from migrate import api
    from migrate.cli.output import out
    from migrate.cli.plan import print_plan
    from migrate.cli.verify import print_checks
    from migrate.reporting import NullReporter

    result = api.ci(
        project_dir(ctx),
        phase,
        plan_json=resolve(ctx, plan_json) if plan_json else None,
        junit_xml=resolve(ctx, junit_xml) if junit_xml else None,
        timeout=timeout,
        reporter=NullReporter(),  # no live display: a pipeline log is not a terminal
    )
    print_plan(result.plan)
    print_checks(result.checks)
    target = os.environ.get(SUMMARY_ENV)
    if target:
        with Path(target).open("a", encoding="utf-8") as summary:
            summary.write(result.summary)
    verdict = result.summary.splitlines()[2].removeprefix("**Result:** ")
    out().print(f"migrate ci: {verdict}")
    raise typer.Exit(result.exit_code)
