"""Apply a plan's changes in order, journaling each; undo journaled changes in reverse."""

from __future__ import annotations

import concurrent.futures
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migrate.errors import ActionError, MigrateError, UserError

if TYPE_CHECKING:
    from migrate.actions.base import Action
    from migrate.engine.change import Change
    from migrate.engine.context import Context
    from migrate.engine.plan import Plan, TaskPlan
    from migrate.state.journal import Journal, Step


@dataclass
class TaskResult:
    phase: int
    task: str
    applied: list[str] = field(default_factory=list)  # change descriptions
    resumed: list[str] = field(default_factory=list)  # journaled as done before: skipped
    unchanged: int = 0  # noop changes
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "task": self.task,
            "applied": self.applied,
            "skipped_already_done": self.resumed,
            "unchanged": self.unchanged,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class RunResult:
    run_id: int
    tasks: list[TaskResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, "run": self.run_id, "tasks": [t.to_dict() for t in self.tasks]}


def _journal(ctx: Context) -> Journal:
    if ctx.journal is None:
        raise MigrateError("the executor needs the project journal")
    return ctx.journal


def apply_plan(
    ctx: Context, plan: Plan, verb: str = "apply", *, jobs: int | None = None
) -> RunResult:
    """Apply every pending change of `plan`; the caller holds the project lock.

    A change whose key is journaled as done is skipped (resume). The changes of
    a task whose action declares them independent (`ConcurrentAction`) are made
    `jobs` at a time (None: the action's default); each is journaled on its own,
    opened before it starts and closed when it ends. A failure stops the run:
    no change starts after it, the ones under way finish and are journaled, and
    the journal says exactly which changes were made.
    """
    journal = _journal(ctx)
    phase_ids = sorted({p.phase.id for p in plan.phases})
    run_id = journal.start_run(verb, phase_ids[0] if len(phase_ids) == 1 else None)
    result = RunResult(run_id=run_id)
    status = "failed"
    try:
        for phase_plan in plan.phases:
            for task_plan in phase_plan.tasks:
                result.tasks.append(_apply_task(ctx, journal, run_id, task_plan, jobs))
        status = "ok"
    finally:
        journal.finish_run(run_id, status)
    return result


def _apply_task(
    ctx: Context, journal: Journal, run_id: int, task_plan: TaskPlan, jobs: int | None
) -> TaskResult:
    from migrate.actions import base, registry

    task = task_plan.task
    action = registry.get(task.action)
    outcome = TaskResult(phase=task_plan.phase, task=task.id)
    started = time.monotonic()
    pending = task_plan.pending
    outcome.unchanged = len(task_plan.changes) - len(pending)
    for change in task_plan.changes:
        if not change.pending and journal.close_if_open(task.id, change.resource):
            outcome.resumed.append(change.describe())
    ctx.reporter.start(f"task:{task.id}", f"{task.id}: {task.title}", len(pending))
    todo: list[Change] = []
    for change in pending:
        if journal.is_done(change.key):
            outcome.resumed.append(change.describe())
            ctx.reporter.advance(f"task:{task.id}")
        else:
            todo.append(change)
    make = functools.partial(_apply_change, ctx, journal, run_id, task_plan, action)
    workers = min(len(todo), base.max_workers(action, ctx, jobs)) if todo else 1
    if workers <= 1:
        for change in todo:
            make(change)
    else:
        _concurrently(make, _waves(action, todo, ctx), workers, task.id)
    outcome.applied = [change.describe() for change in todo]  # in plan order
    journal.mark_applied(task.id, task_plan.phase)
    outcome.seconds = time.monotonic() - started
    ctx.reporter.done(f"task:{task.id}")
    return outcome


def _apply_change(
    ctx: Context,
    journal: Journal,
    run_id: int,
    task_plan: TaskPlan,
    action: Action,
    change: Change,
) -> None:
    """Journal `change` as started, make it, journal it done (or failed, and raise)."""
    task = task_plan.task
    step_id: int | None = None
    try:  # prepare (inside open_step) and apply fail the same way
        step_id, receipt = journal.open_step(
            run_id,
            phase=task_plan.phase,
            task=task.id,
            action=task.action,
            change_key=change.key,
            op=change.op,
            resource=change.resource,
            summary=change.summary,
            prepare=functools.partial(action.prepare, ctx, change),
        )
        receipt = {**receipt, **action.apply(ctx, change)}
    except Exception as exc:
        error = _failure(task.id, change.describe(), exc)
        if step_id is not None:
            journal.fail_step(step_id, error.message)
        raise error from exc
    journal.finish_step(step_id, receipt)
    ctx.reporter.advance(f"task:{task.id}")


def _waves(action: Action, changes: list[Change], ctx: Context) -> list[list[Change]]:
    """The action's waves of `changes`, checked to hold each change exactly once."""
    from migrate.actions import base

    groups = [group for group in base.waves(action, changes, ctx) if group]
    if sorted(id(c) for g in groups for c in g) != sorted(id(c) for c in changes):
        raise MigrateError(f"action {action.kind!r}: its waves do not hold each change once")
    return groups


def _concurrently(
    make: Callable[[Change], None], waves: list[list[Change]], workers: int, task: str
) -> None:
    """Make the changes of each wave `workers` at a time, wave after wave. After a
    failure no change starts; those under way finish (each journaled); then the first
    failure in plan order is raised, naming the others."""
    stop = threading.Event()

    def one(change: Change) -> bool:
        if stop.is_set():
            return False  # not started: another change failed, or the run was interrupted
        try:
            make(change)
        except BaseException:
            stop.set()
            raise
        return True

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"apply-{task}") as pool:
        for wave in waves:
            futures = [pool.submit(one, change) for change in wave]
            try:
                concurrent.futures.wait(futures)
            except BaseException:  # Ctrl-C: nothing more starts; the changes under way end
                stop.set()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            errors = [e for e in (f.exception() for f in futures) if e is not None]
            if errors:
                first = errors[0]
                others = [str(getattr(e, "message", e)) for e in errors[1:]]
                if others and isinstance(first, ActionError):
                    also = "\n  ".join(others)
                    raise ActionError(
                        first.task, f"{first.message}\n  also failed:\n  {also}", hint=first.hint
                    ) from first
                raise first


def settle(ctx: Context, plan: Plan) -> None:
    """A plan with nothing to change: its tasks count as applied, and a step an
    interrupted run left open for a resource that is now up to date is closed."""
    journal = _journal(ctx)
    for phase_plan in plan.phases:
        for task_plan in phase_plan.tasks:
            for change in task_plan.changes:
                journal.close_if_open(task_plan.task.id, change.resource)
            journal.mark_applied(task_plan.task.id, task_plan.phase)


def _failure(task: str, change: str, exc: Exception) -> ActionError:
    """The error of a change that failed, naming its task and what to do."""
    if isinstance(exc, ActionError):
        return exc
    again = "run the same command again: changes already made are not redone"
    if isinstance(exc, UserError):
        where = f"{exc.location}: " if exc.location else ""
        return ActionError(
            task,
            f"{change}: {where}{exc.message}",
            hint=f"{exc.hint}; then {again}" if exc.hint else again,
        )
    return ActionError(
        task, f"{change} failed: {type(exc).__name__}: {exc}", hint=f"fix the cause and {again}"
    )


def _rollback_failure(step: Step, exc: Exception) -> MigrateError:
    """The error of a step that could not be undone, naming its task (as apply's do)."""
    again = "run `migrate rollback` again: steps already undone are not redone"
    if isinstance(exc, ActionError):
        return exc
    if isinstance(exc, UserError):
        where = f"{exc.location}: " if exc.location else ""
        return ActionError(
            step.task,
            f"undoing {step.resource}: {where}{exc.message}",
            hint=f"{exc.hint}; then {again}" if exc.hint else again,
        )
    if isinstance(exc, MigrateError):
        return ActionError(step.task, f"undoing {step.resource}: {exc}", hint=again)
    return ActionError(
        step.task,
        f"undoing {step.resource} failed: {type(exc).__name__}: {exc}",
        hint=f"fix the cause and {again}",
    )


@dataclass
class RollbackResult:
    run_id: int
    phase: int
    undone: list[str] = field(default_factory=list)
    #: what the actions could not restore, and why (`task: resource: reason`)
    not_restored: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "run": self.run_id,
            "phase": self.phase,
            "undone": self.undone,
            "not_restored": self.not_restored,
        }


def rollback_phase(ctx: Context, phase: int) -> RollbackResult:
    """Undo the journaled changes of `phase`, newest first; the caller holds the lock.

    Works from the journal alone: a roadmap edited since apply does not change
    what is undone. Each undone step is marked at once, so an interrupted
    rollback resumes where it stopped.
    """
    from migrate.actions import registry

    journal = _journal(ctx)
    steps: list[Step] = list(reversed(journal.undoable_steps(phase)))
    run_id = journal.start_run("rollback", phase)
    result = RollbackResult(run_id=run_id, phase=phase)
    status = "failed"
    ctx.reporter.start("rollback", f"rolling back phase {phase}", len(steps))
    try:
        for step in steps:
            try:
                lost = registry.get(step.action).rollback(ctx, step.receipt or {})
            except Exception as exc:
                raise _rollback_failure(step, exc) from exc
            journal.mark_rolled_back(step.id)
            result.undone.append(f"{step.task}: {step.resource}")
            if lost:
                result.not_restored.append(f"{step.task}: {step.resource}: {lost}")
                ctx.reporter.warn(f"not restored: {step.task}: {step.resource}: {lost}")
            ctx.reporter.advance("rollback")
        journal.forget_phase(phase)
        status = "ok"
    finally:
        journal.finish_run(run_id, status)
        ctx.reporter.done("rollback")
    return result
