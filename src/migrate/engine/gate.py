"""What is checked before a phase is applied or rolled back: the phase gate, the
preflight of each action kind, and which phase a rollback undoes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrate.errors import RefusedError, UserError

if TYPE_CHECKING:
    from migrate.engine.context import Context
    from migrate.engine.plan import Plan
    from migrate.state.journal import Journal

#: preflights that start nothing first: the data check may start the embedded server
PREFLIGHT_ORDER = ("infra", "manifests", "images", "data")


def _journal(ctx: Context) -> Journal:
    assert ctx.journal is not None, "open the context with journal=True"
    return ctx.journal


def require_done(ctx: Context, phase: int) -> None:
    """The phase gate: refuse to apply `phase` while the phase before it is not done."""
    if phase <= 1:
        return
    previous = ctx.roadmap.phase(phase - 1)
    states = _journal(ctx).task_states()
    done = [t.id for t in previous.tasks if states.get(t.id) and states[t.id].done]
    if len(done) < len(previous.tasks):
        raise RefusedError(
            f"phase {previous.id} is not done: {len(done)} of {len(previous.tasks)} tasks "
            f"verified; run `migrate verify --phase {previous.id}`, or pass --force"
        )


def progress(ctx: Context, phase: int) -> tuple[int, int]:
    """(tasks done, tasks) of `phase`, as the journal records them."""
    states = _journal(ctx).task_states()
    tasks = ctx.roadmap.phase(phase).tasks
    return sum(1 for t in tasks if t.id in states and states[t.id].done), len(tasks)


def preflight(ctx: Context, plan: Plan) -> None:
    """Before anything is asked or changed: each action kind with pending changes checks
    what it needs (a `preflight(ctx)` method: the Pulumi CLI, the cluster)."""
    from migrate.actions import registry

    kinds = {t.task.action for p in plan.phases for t in p.tasks if t.pending}
    order = list(PREFLIGHT_ORDER)
    for kind in sorted(kinds, key=lambda k: order.index(k) if k in order else len(order)):
        check = getattr(registry.get(kind), "preflight", None)
        if check is not None:
            check(ctx)


def rollback_target(ctx: Context, phase: int | None, force: bool) -> tuple[int, list[str]]:
    """The phase a rollback undoes (default: the last applied) and a line per change it
    undoes, newest first. Refuses while a later phase is applied, unless `force`."""
    journal = _journal(ctx)
    applied = journal.applied_phases()
    if phase is not None and phase not in applied:
        ctx.roadmap.phase(phase)  # "there is no phase 9", as plan says
    if phase is None:
        if not applied:
            raise UserError("nothing to roll back: no phase has been applied")
        phase = applied[-1]
    later = [p for p in applied if p > phase]
    if later and not force:
        raise RefusedError(
            f"phase {later[-1]} is applied after phase {phase}",
            hint=f"roll back phase {later[-1]} first, or pass --force",
        )
    steps = journal.undoable_steps(phase)
    if not steps:
        raise UserError(f"nothing to roll back: phase {phase} has no applied changes")
    return phase, [  # with what undoing it keeps and deletes, when the action says
        f"{s.task}: {s.resource}"
        + (f" ({s.receipt['undo']})" if s.receipt and s.receipt.get("undo") else "")
        for s in reversed(steps)
    ]
