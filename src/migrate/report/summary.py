"""The Markdown summary of a `migrate ci` run, for `$GITHUB_STEP_SUMMARY`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from migrate.engine.plan import Plan
    from migrate.verify.model import VerifyReport

VERDICTS = {
    0: "everything is verified and nothing is pending",
    1: "a check failed",
    2: "changes are pending; every check passed",
}


def markdown(project: str, plan: Plan, checks: VerifyReport, exit_code: int) -> str:
    counts = plan.summary()
    lines = [
        f"## migrate ci: {project}",
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
                f"| {phase.id} | {task.id} | {pending.get(task.id, 0)} | "
                f"{passed}/{len(task.checks)} passed | {'yes' if task.done else 'no'} |"
            )
    failed = checks.failed
    if failed:
        lines += ["", "### Failed checks", ""]
        lines += [f"- **{c.name}** ({c.kind} on `{c.host}`): {c.message}" for c in failed]
    return "\n".join(lines) + "\n"
