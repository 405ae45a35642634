"""The Plan: per phase and task, the changes `apply` would make. Pure data."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from migrate.engine.change import OPS, Change
from migrate.engine.ordering import order_tasks

if TYPE_CHECKING:
    from migrate.engine.context import Context
    from migrate.roadmap import Phase, Task


@dataclass(frozen=True)
class TaskPlan:
    phase: int
    task: Task
    changes: tuple[Change, ...]
    done: bool  # all its checks passed at the last verify

    @property
    def pending(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.pending)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.task.id,
            "title": self.task.title,
            "action": self.task.action,
            "done": self.done,
            "changes": [c.to_dict() for c in self.changes],
        }


@dataclass(frozen=True)
class PhasePlan:
    phase: Phase
    tasks: tuple[TaskPlan, ...]

    @property
    def done(self) -> bool:
        return all(t.done for t in self.tasks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.phase.id,
            "name": self.phase.name,
            "done": self.done,
            "tasks": [t.to_dict() for t in self.tasks],
        }


@dataclass(frozen=True)
class Plan:
    project: str
    phases: tuple[PhasePlan, ...]

    @property
    def changes(self) -> list[Change]:
        return [c for p in self.phases for t in p.tasks for c in t.changes]

    @property
    def has_changes(self) -> bool:
        return any(c.pending for c in self.changes)

    def summary(self) -> dict[str, int]:
        counts = Counter(c.op for c in self.changes)
        return {op: counts.get(op, 0) for op in OPS}

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "project": self.project,
            "phases": [p.to_dict() for p in self.phases],
            "summary": self.summary(),
        }


def plan_task(ctx: Context, phase: Phase, task: Task, done: bool) -> TaskPlan:
    from migrate.actions import registry

    action = registry.get(task.action)
    changes = tuple(action.plan(ctx, task))
    return TaskPlan(phase=phase.id, task=task, changes=changes, done=done)


def build_plan(
    ctx: Context, phases: list[int] | None = None, only: list[str] | None = None
) -> Plan:
    """Plan the given phases (default all), tasks in `needs` order."""
    from migrate.errors import RoadmapError

    done = {}
    if ctx.journal is not None:
        done = {name: state.done for name, state in ctx.journal.task_states().items()}
    selected = [ctx.roadmap.phase(n) for n in phases] if phases else list(ctx.roadmap.phases)
    if only:
        known = {task.id for phase in selected for task in phase.tasks}
        for name in only:
            if name not in known:
                raise RoadmapError(
                    f"--only {name}: no such task in phase(s) "
                    f"{', '.join(str(p.id) for p in selected)}",
                    hint=f"tasks: {', '.join(sorted(known))}",
                )
    phase_plans = []
    for phase in selected:
        tasks = [t for t in order_tasks(phase.tasks) if not only or t.id in only]
        phase_plans.append(
            PhasePlan(
                phase=phase,
                tasks=tuple(plan_task(ctx, phase, t, done.get(t.id, False)) for t in tasks),
            )
        )
    return Plan(project=ctx.config.project, phases=tuple(phase_plans))
