"""Planner ordering: list equality, like alembic's traversal tests."""

from __future__ import annotations

from migrate.engine.ordering import order_tasks
from migrate.roadmap import Task, default_roadmap_path, load_roadmap


def task(task_id: str, *needs: str) -> Task:
    return Task(id=task_id, title=task_id, action="manual", needs=list(needs))


def ids(tasks: list[Task]) -> list[str]:
    return [t.id for t in tasks]


def test_file_order_when_independent() -> None:
    assert ids(order_tasks([task("c"), task("a"), task("b")])) == ["c", "a", "b"]


def test_needs_come_first() -> None:
    tasks = [task("deploy", "build"), task("build", "fetch"), task("fetch"), task("docs")]
    assert ids(order_tasks(tasks)) == ["fetch", "build", "deploy", "docs"]


def test_diamond() -> None:
    tasks = [task("d", "b", "c"), task("c", "a"), task("b", "a"), task("a")]
    assert ids(order_tasks(tasks)) == ["a", "c", "b", "d"]


def test_needs_outside_the_phase_are_ignored() -> None:
    assert ids(order_tasks([task("x", "earlier-phase-task"), task("y")])) == ["x", "y"]


def test_default_roadmap_order() -> None:
    roadmap = load_roadmap(default_roadmap_path())
    assert [ids(order_tasks(p.tasks)) for p in roadmap.phases] == [
        ["cluster-setup", "ci-cd-pipelines", "monitoring-stack", "dev-environments"],
        ["containerize-services", "database-migration", "service-mesh", "load-balancing"],
        ["agent-orchestrator", "async-execution", "event-driven-communication", "auto-scaling"],
        ["caching", "machine-learning", "analytics", "security"],
    ]
