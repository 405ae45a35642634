"""The Plan: per phase and task, the changes `apply` would make. Pure data."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from migrate.engine.change import OPS, Change
from migrate.engine.ordering import order_tasks

if TYPE_CHECKING:
    from migrate.engine.context import Context
    from migrate.manifests.lint import LintReport
    from migrate.roadmap import Phase, Roadmap, Task


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
    lint: LintReport | None = None  # the whole-set checks of the rendered manifests

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
        document: dict[str, Any] = {
            "version": 1,
            "project": self.project,
            "phases": [p.to_dict() for p in self.phases],
            "summary": self.summary(),
        }
        if self.lint is not None:
            document["findings"] = [f.to_dict() for f in self.lint.findings]
        return document


def plan_task(ctx: Context, phase: Phase, task: Task, done: bool) -> TaskPlan:
    from migrate.actions import registry

    action = registry.get(task.action)
    changes = tuple(action.plan(ctx, task))
    return TaskPlan(phase=phase.id, task=task, changes=changes, done=done)


def check_only(roadmap: Roadmap, selected: list[Phase], only: list[str] | None) -> None:
    """Each `--only` task is in the selected phases; one of another phase is named there."""
    from migrate.errors import RoadmapError

    known = {task.id for phase in selected for task in phase.tasks}
    numbers = ", ".join(str(p.id) for p in selected)
    for name in only or []:
        if name in known:
            continue
        elsewhere = [p.id for p, t in roadmap.tasks() if t.id == name]
        if elsewhere:
            raise RoadmapError(
                f"--only {name}: task {name!r} is in phase {elsewhere[0]}, not in phase(s) "
                f"{numbers}",
                hint=f"use --phase {elsewhere[0]} --only {name}",
            )
        raise RoadmapError(
            f"--only {name}: no such task in phase(s) {numbers}",
            hint=f"tasks: {', '.join(sorted(known))}",
        )


def build_plan(
    ctx: Context, phases: list[int] | None = None, only: list[str] | None = None
) -> Plan:
    """Plan the given phases (default all), tasks in `needs` order."""
    done = {}
    if ctx.journal is not None:
        done = {name: state.done for name, state in ctx.journal.task_states().items()}
    selected = [ctx.roadmap.phase(n) for n in phases] if phases else list(ctx.roadmap.phases)
    check_only(ctx.roadmap, selected, only)
    phase_plans = []
    for phase in selected:
        tasks = [t for t in order_tasks(phase.tasks) if not only or t.id in only]
        phase_plans.append(
            PhasePlan(
                phase=phase,
                tasks=tuple(plan_task(ctx, phase, t, done.get(t.id, False)) for t in tasks),
            )
        )
    if "_render_memo" in ctx.__dict__:  # the tasks' renders, kept for the next plan
        from migrate.manifests.render_memo import save_render_memo

        save_render_memo(ctx)
    return Plan(project=ctx.config.project, phases=tuple(phase_plans))
