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
    from migrate.errors import MigrateError
    from migrate.reporting import NullReporter

    plan_path = resolve(ctx, plan_json) if plan_json else None
    junit_path = resolve(ctx, junit_xml) if junit_xml else None
    try:
        result = api.ci(
            project_dir(ctx),
            phase,
            plan_json=plan_path,
            junit_xml=junit_path,
            timeout=timeout,
            reporter=NullReporter(),  # no live display: a pipeline log is not a terminal
        )
    except MigrateError as exc:
        # an invalid roadmap or config: the pipeline still finds its three files, each
        # with the error; then the error is printed and ci exits 1 as everywhere
        _write_error_files(project_dir(ctx), exc, plan_path, junit_path)
        raise
    print_plan(result.plan)
    print_checks(result.checks)
    target = os.environ.get(SUMMARY_ENV)
    if target:
        with Path(target).open("a", encoding="utf-8") as summary:
            summary.write(result.summary)
    verdict = result.summary.splitlines()[2].removeprefix("**Result:** ")
    out().print(f"migrate ci: {verdict}")
    raise typer.Exit(result.exit_code)


def _write_error_files(
    project: Path, exc: Exception, plan_json: Path | None, junit_xml: Path | None
) -> None:
    import contextlib
    import json

    from migrate.errors import UserError
    from migrate.report.summary import error_markdown
    from migrate.verify.junit import error_xml

    text = exc.render() if isinstance(exc, UserError) else str(exc) or type(exc).__name__
    document = exc.to_dict() if isinstance(exc, UserError) else {"error": text}
    with contextlib.suppress(OSError):  # the error itself is what the user must see
        target = os.environ.get(SUMMARY_ENV)
        if target:
            with Path(target).open("a", encoding="utf-8") as summary:
                summary.write(error_markdown(project.resolve().name, text))
        if junit_xml is not None:
            junit_xml.parent.mkdir(parents=True, exist_ok=True)
            junit_xml.write_text(error_xml(text), encoding="utf-8")
        if plan_json is not None:
            plan_json.parent.mkdir(parents=True, exist_ok=True)
            plan_json.write_text(
                json.dumps({"version": 1, **document}, indent=2) + "\n", encoding="utf-8"
            )
