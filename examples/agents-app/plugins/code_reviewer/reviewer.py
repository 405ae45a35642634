"""Code reviewer plugin: count simple style issues in source code."""

from __future__ import annotations

from typing import Any

MAX_LINE = 88


def review(code: str) -> list[dict[str, Any]]:
    """Return one issue dict per problem found, in line order."""
    issues: list[dict[str, Any]] = []
    for lineno, line in enumerate(code.splitlines(), start=1):
        if len(line) > MAX_LINE:
            issues.append({"line": lineno, "rule": "line-too-long"})
        if line != line.rstrip():
            issues.append({"line": lineno, "rule": "trailing-whitespace"})
        if "\t" in line[: len(line) - len(line.lstrip())]:
            issues.append({"line": lineno, "rule": "tab-indent"})
        if "TODO" in line or "FIXME" in line:
            issues.append({"line": lineno, "rule": "todo-left"})
        if line.lstrip().startswith("print("):
            issues.append({"line": lineno, "rule": "print-call"})
    return issues


def handle(payload: dict[str, Any]) -> dict[str, Any]:
    """Review ``{"code": str}`` and report issues and counts per rule."""
    issues = review(str(payload.get("code", "")))
    counts: dict[str, int] = {}
    for issue in issues:
        counts[issue["rule"]] = counts.get(issue["rule"], 0) + 1
    return {
        "event": "review.done",
        "issue_count": len(issues),
        "counts": dict(sorted(counts.items())),
        "issues": issues,
        "approved": not issues,
    }
