"""`apply` and `rollback` of a phase, inside the project lock the caller holds: the
gate, the preflight, the plan, the executor, then the phase's checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from migrate.engine.context import Context
    from migrate.engine.executor import RollbackResult, RunResult
    from migrate.engine.plan import Plan
    from migrate.verify.model import VerifyReport

Confirm = Callable[["Plan"], bool]


@dataclass(frozen=True)
class ApplyResult:
    plan: Plan
    run: RunResult | None  # None: nothing to do, or not confirmed
    confirmed: bool
    checks: VerifyReport | None = None  # the phase's checks, run after applying
    # (tasks done, tasks) of the whole phase after applying: with --only, the checks
    # above are those of some of its tasks only
    progress: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "plan": self.plan.to_dict(),
            "confirmed": self.confirmed,
            "tasks": self.run.to_dict()["tasks"] if self.run else [],
            "checks": self.checks.to_dict() if self.checks else None,
            "phase_progress": (
                {"done": self.progress[0], "tasks": self.progress[1]} if self.progress else None
            ),
        }


def apply_phase(
    ctx: Context,
    phase: int,
    *,
    only: list[str] | None = None,
    force: bool = False,
    confirm: Confirm | None = None,
    jobs: int | None = None,
) -> ApplyResult:
    """Apply `phase` (or its `only` tasks) and run its checks; the caller holds the
    project lock and opened `ctx` with the journal. Refuses while phase `phase - 1`
    is not done, unless `force`."""
    from migrate.engine import gate
    from migrate.engine.executor import apply_plan, settle
    from migrate.engine.plan import build_plan
    from migrate.verify.runner import verify as run_checks

    if not force:
        gate.require_done(ctx, phase)
    the_plan = build_plan(ctx, [phase], only)
    gate.preflight(ctx, the_plan)
    if not the_plan.has_changes:
        settle(ctx, the_plan)  # applied, with nothing to change
        run = None
    elif confirm is not None and not confirm(the_plan):
        return ApplyResult(plan=the_plan, run=None, confirmed=False)
    else:
        run = apply_plan(ctx, the_plan, jobs=jobs)
    checks = run_checks(ctx, [phase], only=only)  # what the apply achieved
    progress = gate.progress(ctx, phase)
    assert ctx.journal is not None  # opened with journal=True
    ctx.journal.check_identity()  # the journal this run recorded in is still there
    return ApplyResult(plan=the_plan, run=run, confirmed=True, checks=checks, progress=progress)


def rollback(
    ctx: Context,
    phase: int | None = None,
    *,
    force: bool = False,
    confirm: Callable[[int, list[str]], bool] | None = None,
) -> RollbackResult | None:
    """Undo the journaled changes of `phase` (default: the last applied phase); the
    caller holds the project lock. None when `confirm` declined. Refuses while a later
    phase is applied, unless `force`."""
    from migrate.engine import gate
    from migrate.engine.executor import rollback_phase

    phase, descriptions = gate.rollback_target(ctx, phase, force)
    if confirm is not None and not confirm(phase, descriptions):
        return None
    return rollback_phase(ctx, phase)
