"""`migrate status`: each phase's tasks, done (verified) or not, from the journal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from migrate.engine.context import Context


@dataclass(frozen=True)
class TaskStatus:
    id: str
    title: str
    action: str
    done: bool
    last_applied: str | None
    last_verified: str | None


@dataclass(frozen=True)
class PhaseStatus:
    id: int
    name: str
    tasks: list[TaskStatus]

    @property
    def done(self) -> bool:
        return all(t.done for t in self.tasks)


@dataclass(frozen=True)
class Status:
    project: str
    phases: list[PhaseStatus]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "project": self.project,
            "phases": [
                {
                    "id": p.id,
                    "name": p.name,
                    "done": p.done,
                    "tasks": [
                        {
                            "id": t.id,
                            "title": t.title,
                            "action": t.action,
                            "done": t.done,
                            "last_applied": t.last_applied,
                            "last_verified": t.last_verified,
                        }
                        for t in p.tasks
                    ],
                }
                for p in self.phases
            ],
        }


def status(ctx: Context) -> Status:
    """Phases and tasks: done (verified) or not, and when each was last applied."""
    states = ctx.journal.task_states() if ctx.journal else {}
    phases = []
    for phase in ctx.roadmap.phases:
        tasks = []
        for task in phase.tasks:
            state = states.get(task.id)
            tasks.append(
                TaskStatus(
                    id=task.id,
                    title=task.title,
                    action=task.action,
                    done=bool(state and state.done),
                    last_applied=state.applied_at if state else None,
                    last_verified=state.verified_at if state else None,
                )
            )
        phases.append(PhaseStatus(id=phase.id, name=phase.name, tasks=tasks))
    return Status(project=ctx.config.project, phases=phases)
