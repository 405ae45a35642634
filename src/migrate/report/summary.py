"""The Markdown summary of a `migrate ci` run, for `$GITHUB_STEP_SUMMARY`."""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from migrate.engine.plan import Plan
    from migrate.verify.model import VerifyReport

_MARKDOWN = re.compile(r"([\\`*_{}\[\]<>|~!#])")


def md(value: object) -> str:
    """`value` as literal text in Markdown that may hold HTML (GitHub's step summary, the
    report): one line, HTML entities for `&`, `<`, `>`, and a backslash before every
    character Markdown or a table would read (`*`, `_`, backticks, brackets, `|`, ...)."""
    text = html.escape(" ".join(str(value).split()), quote=False)
    return _MARKDOWN.sub(r"\\\1", text)


VERDICTS = {
    0: "everything is verified and nothing is pending",
    1: "a check failed",
    2: "changes are pending; every check passed",
}


def markdown(project: str, plan: Plan, checks: VerifyReport, exit_code: int) -> str:
    counts = plan.summary()
    lines = [
        f"## migrate ci: {md(project)}",
        "",
        f"**Result:** {VERDICTS[exit_code]} (exit {exit_code}).",
        "",
        f"**Plan:** {counts['create']} to create, {counts['update']} to update, "
        f"{counts['delete']} to delete, {counts['noop']} unchanged.",
        "",
        "| phase | task | pending changes | checks | done |",
        "| --- | --- | ---: | --- | --- |",
    ]
    pending = {
        t.task.id: len(t.pending) for p in plan.phases for t in p.tasks
    }  # fmt: skip
    for phase in checks.phases:
        for task in phase.tasks:
            passed = sum(c.passed for c in task.checks)
            lines.append(
                f"| {phase.id} | {md(task.id)} | {pending.get(task.id, 0)} | "
                f"{passed}/{len(task.checks)} passed | {'yes' if task.done else 'no'} |"
            )
    failed = checks.failed
    if failed:
        lines += ["", "### Failed checks", ""]
        lines += [
            f"- **{md(c.name)}** ({md(c.kind)} on {md(c.host)}): {md(c.message)}" for c in failed
        ]
    return "\n".join(lines) + "\n"


def error_markdown(project: str, error: str) -> str:
    """The summary of a `migrate ci` run that stopped before planning (an invalid roadmap
    or configuration): the error, escaped, so the pipeline's summary is never empty."""
    lines = [
        f"## migrate ci: {md(project)}",
        "",
        "**Result:** the project could not be loaded (exit 1).",
        "",
        "**Error:**",
        "",
        *(f"> {md(line)}" if line.strip() else ">" for line in error.splitlines()),
    ]
    return "\n".join(lines) + "\n"
