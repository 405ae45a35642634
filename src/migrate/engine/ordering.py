"""Order tasks so that every task comes after the tasks it needs."""

from __future__ import annotations

from collections.abc import Sequence

from migrate.roadmap import Task


def order_tasks(tasks: Sequence[Task]) -> list[Task]:
    """Topological order of `tasks` by `needs`, stable in file order.

    Needs on tasks outside `tasks` (an earlier phase) are ignored here; the
    roadmap loader has already rejected cycles and unknown ids.
    """
    by_id = {task.id: task for task in tasks}
    position = {task.id: index for index, task in enumerate(tasks)}
    ordered: list[Task] = []
    placed: set[str] = set()
    remaining = list(tasks)
    while remaining:
        ready = [
            task
            for task in remaining
            if all(need in placed or need not in by_id for need in task.needs)
        ]
        if not ready:  # a cycle: the loader prevents this
            raise ValueError(f"cycle among {[t.id for t in remaining]}")
        first = min(ready, key=lambda task: position[task.id])
        ordered.append(first)
        placed.add(first.id)
        remaining.remove(first)
    return ordered
