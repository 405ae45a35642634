"""The check kinds that prove the migration: `equivalence` (migrate compare) and
`performance` (migrate bench), run by verify and ci with the same code.

Both run from the machine running verify: they start the plugins' images on
the local Docker engine (host networking, 127.0.0.1) and remove them after.
Setup problems (no corpus, no image, no Docker engine) fail the check with the
error's message; a difference or a budget overrun fails it saying which plugin,
where and how much.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from migrate import checks as c
from migrate.verify.kinds import Outcome, Target

MAX_SECONDS = 3600.0  # the runner's deadline for one proof check


def budget(params: Any) -> float:
    """The longest a proof check may take (its runner's deadline)."""
    if isinstance(params, c.PerformanceCheck):
        return min(MAX_SECONDS, 60.0 + 20 * (2 * params.duration + 30))
    return MAX_SECONDS


def _selected(plugins: str | list[str]) -> list[str] | None:
    return None if plugins == "all" else list(plugins)


def equivalence(t: Target, p: c.EquivalenceCheck) -> Outcome:
    from migrate.compare.verbs import compare

    result = compare(t.project_dir, _selected(p.plugins), sample=p.sample)
    replayed = sum(r.replayed for r in result.plugins)
    if result.ok:
        noise = sorted({path for r in result.plugins for path in r.noise})
        extra = f"; noise ignored at {', '.join(noise[:5])}" if noise else ""
        return Outcome(
            True,
            f"{len(result.plugins)} plugin(s) gave the legacy answers to {replayed} replayed "
            f"inputs{extra}",
        )
    problems = []
    for r in result.plugins:
        if r.different and r.examples:
            example = r.examples[0]
            problems.append(
                f"{r.plugin}: {r.different} of {r.replayed} different at "
                f"{', '.join(r.differing_paths[:3])} (e.g. input {_short(example.input)}: "
                f"{example.diff[0].describe(60)})"
            )
        if r.errors and r.failures:
            failure = r.failures[0]
            problems.append(
                f"{r.plugin}: {r.errors} error(s) on the {failure.side} side: {failure.message}"
            )
    return Outcome(False, "; ".join(problems) or "nothing was replayed")


def performance(t: Target, p: c.PerformanceCheck) -> Outcome:
    from migrate.compare.verbs import bench

    result = bench(
        t.project_dir,
        _selected(p.plugins),
        concurrency=p.concurrency,
        duration=p.duration,
        p95_ms=p.p95_ms,
        max_p95_ratio=p.max_p95_ratio,
    )
    if result.ok:
        worst = max(result.plugins, key=lambda r: r.migrated.p95_ms, default=None)
        if worst is None:
            return Outcome(False, "no plugin was measured")
        return Outcome(
            True,
            f"{len(result.plugins)} plugin(s) within budget; the slowest p95 is "
            f"{worst.migrated.p95_ms:.2f} ms ({worst.plugin}, "
            f"{worst.migrated.rps:.0f} req/s at concurrency {p.concurrency})",
        )
    return Outcome(
        False, "; ".join(f"{r.plugin}: {'; '.join(r.over)}" for r in result.plugins if r.over)
    )


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


RUNNERS: dict[str, Callable[[Target, Any], Outcome]] = {
    "equivalence": equivalence,
    "performance": performance,
}
