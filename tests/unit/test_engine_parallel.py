"""The executor runs the independent changes of a task concurrently, journal exact.

A stand-in action declares its changes independent (`max_workers`, `waves`); its
changes meet at a barrier, which only changes running at the same time can pass
(the barrier's timeout is a deadline, not a measurement).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest

from migrate import api
from migrate.actions import registry
from migrate.engine.change import Change, Receipt
from migrate.errors import ActionError
from migrate.reporting import RecordingReporter
from migrate.state.journal import Journal
from tests.conftest import write

ROADMAP = """
phases:
  - id: 1
    name: One
    tasks:
      - id: many
        title: Many independent things
        action: manual
"""
NAMES = ("r1", "r2", "r3", "r4")
DEADLINE = 30.0  # seconds a change waits at the barrier before the test fails


class ParallelAction:
    """Stands in for `manual`: four independent changes, always pending."""

    kind: ClassVar[str] = "manual"
    Params: ClassVar[Any] = None

    def __init__(self, meet: int, fail_on: set[str] | None = None) -> None:
        self.barrier = threading.Barrier(meet, timeout=DEADLINE)
        self.fail_on = fail_on or set()
        self.split: list[list[str]] | None = None  # waves by name; None: one wave
        self.events: list[tuple[str, str]] = []
        self.threads: set[str] = set()
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    def plan(self, ctx: Any, task: Any) -> list[Change]:
        return [
            Change(task=task.id, action="manual", op="create", resource=f"thing:{n}", summary=n)
            for n in NAMES
        ]

    def prepare(self, ctx: Any, change: Change) -> Receipt:
        return {"n": change.summary}

    def apply(self, ctx: Any, change: Change) -> Receipt:
        name = change.summary
        with self._lock:
            self.events.append(("start", name))
            self.threads.add(threading.current_thread().name)
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            self.barrier.wait()  # passes only when `meet` changes run at once
            if name in self.fail_on:
                self.fail_on.discard(name)
                raise RuntimeError(f"{name} broke")
        finally:
            with self._lock:
                self.running -= 1
                self.events.append(("end", name))
        return {"applied": name}

    def rollback(self, ctx: Any, receipt: Receipt) -> None:
        pass

    def max_workers(self, ctx: Any, jobs: int | None) -> int:
        return jobs or len(NAMES)

    def waves(self, ctx: Any, changes: Sequence[Change]) -> list[list[Change]]:
        if self.split is None:
            return [list(changes)]
        by_name = {c.summary: c for c in changes}
        return [[by_name[n] for n in wave if n in by_name] for wave in self.split]


@pytest.fixture
def many(project: Path) -> Path:
    write(project / "phases" / "roadmap.yaml", ROADMAP)
    return project


@contextmanager
def use(action: ParallelAction) -> Iterator[ParallelAction]:
    with registry.override("manual", action):
        yield action


def steps(project: Path) -> list[tuple[str, str]]:
    return [(s.resource, s.status) for s in Journal(project / ".migrate" / "state.db").steps()]


def keys_once(project: Path) -> bool:
    keys = [s.change_key for s in Journal(project / ".migrate" / "state.db").steps()]
    return len(keys) == len(set(keys))


def test_independent_changes_run_at_once_each_journaled_once(many: Path) -> None:
    reporter = RecordingReporter()
    with use(ParallelAction(meet=4)) as action:
        result = api.apply(many, 1, reporter=reporter, jobs=4)
    assert action.most == 4
    assert result.run is not None
    assert result.run.tasks[0].applied == [f"+ thing:{n}: {n}" for n in NAMES]  # plan order
    assert sorted(steps(many)) == [(f"thing:{n}", "done") for n in NAMES]
    assert keys_once(many)
    assert [e for e in reporter.events if e[:2] == ("advance", "task:many")] == [
        ("advance", "task:many", 1)
    ] * 4
    assert reporter.events.index(("done", "task:many", None)) > max(
        i for i, e in enumerate(reporter.events) if e[:2] == ("advance", "task:many")
    )


def test_jobs_bounds_how_many_run_at_once(many: Path) -> None:
    with use(ParallelAction(meet=2)) as action:
        api.apply(many, 1, jobs=2)
    assert action.most == 2  # pairs met at the barrier, never more than two at once
    assert sorted(steps(many)) == [(f"thing:{n}", "done") for n in NAMES]


def test_one_job_runs_them_one_after_another_on_the_calling_thread(many: Path) -> None:
    with use(ParallelAction(meet=1)) as action:
        api.apply(many, 1, jobs=1)
    assert action.most == 1
    assert action.threads == {threading.current_thread().name}
    assert action.events == [(kind, n) for n in NAMES for kind in ("start", "end")]


def test_waves_run_one_after_another(many: Path) -> None:
    action = ParallelAction(meet=1)
    action.split = [["r1"], ["r2", "r3", "r4"]]
    with use(action):
        api.apply(many, 1, jobs=1)  # one job: the waves are ignored, the plan order kept
    assert [n for kind, n in action.events if kind == "start"] == list(NAMES)

    action = ParallelAction(meet=3)
    action.split = [["r4"], ["r1", "r2", "r3"]]
    action.barrier = threading.Barrier(1, timeout=DEADLINE)  # r4 alone first
    second = threading.Barrier(3, timeout=DEADLINE)

    original = action.apply

    def apply(ctx: Any, change: Change) -> Receipt:
        if change.summary != "r4":
            action.barrier = second  # the second wave: three at once
        return original(ctx, change)

    action.apply = apply  # type: ignore[method-assign]
    with use(action):
        api.apply(many, 1, jobs=4)
    assert action.events[:2] == [("start", "r4"), ("end", "r4")]
    assert action.most == 3


def test_a_failure_lets_the_others_finish_and_apply_again_resumes(many: Path) -> None:
    action = ParallelAction(meet=4, fail_on={"r2", "r3"})
    with pytest.raises(ActionError, match="r2 broke") as caught, use(action):
        api.apply(many, 1, jobs=4)
    assert "also failed" in caught.value.message and "r3 broke" in caught.value.message
    assert "run the same command again" in str(caught.value)
    assert [n for kind, n in action.events if kind == "end"].count("r1") == 1
    assert sorted(steps(many)) == [
        ("thing:r1", "done"),
        ("thing:r2", "failed"),
        ("thing:r3", "failed"),
        ("thing:r4", "done"),
    ]

    again = ParallelAction(meet=2)
    with use(again):
        result = api.apply(many, 1, jobs=4)
    assert sorted(n for kind, n in again.events if kind == "start") == ["r2", "r3"]
    assert result.run is not None
    assert result.run.tasks[0].resumed == ["+ thing:r1: r1", "+ thing:r4: r4"]
    assert sorted(steps(many)) == [(f"thing:{n}", "done") for n in NAMES]
    assert keys_once(many)  # the failed steps were taken over, not journaled twice


def test_after_a_failure_no_change_starts(many: Path) -> None:
    action = ParallelAction(meet=1, fail_on={"r1"})
    action.split = [["r1"], ["r2", "r3", "r4"]]
    with pytest.raises(ActionError, match="r1 broke"), use(action):
        api.apply(many, 1, jobs=4)
    assert action.events == [("start", "r1"), ("end", "r1")]  # the next wave never began
    assert steps(many) == [("thing:r1", "failed")]
