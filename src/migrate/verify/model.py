"""The results of a verify run: per phase, task and check. Pure data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class CheckResult:
    name: str
    kind: str
    host: str
    passed: bool
    message: str  # one line: what was found (and, on failure, what was expected)
    # the check could not be run (a host or service did not answer, or answered 5xx):
    # an error, not a failure, and never a pass
    error: bool = False
    seconds: float = 0.0  # how long the check took (JUnit `time`)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "host": self.host,
            "passed": self.passed,
            "error": self.error,
            "message": self.message,
        }


@dataclass(frozen=True)
class TaskResult:
    id: str
    title: str
    checks: list[CheckResult]
    done: bool  # all its checks passed (a task without checks: see runner.task_done)
    note: str = ""  # why a task without checks is done or not

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "done": self.done,
            "checks": [c.to_dict() for c in self.checks],
        }


@dataclass(frozen=True)
class PhaseResult:
    id: int
    name: str
    tasks: list[TaskResult]

    @property
    def done(self) -> bool:
        return all(t.done for t in self.tasks)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "done": self.done, "tasks": [t.to_dict() for t in self.tasks]}


@dataclass(frozen=True)
class VerifyReport:
    phases: list[PhaseResult] = field(default_factory=list)
    started: datetime | None = None  # when the run began (UTC)
    seconds: float = 0.0  # how long the whole run took

    @property
    def checks(self) -> list[CheckResult]:
        return [c for p in self.phases for t in p.tasks for c in t.checks]

    @property
    def failed(self) -> list[CheckResult]:
        """The checks that did not pass: failures and errors."""
        return [c for c in self.checks if not c.passed]

    @property
    def errors(self) -> list[CheckResult]:
        """The checks that could not be run (a subset of `failed`)."""
        return [c for c in self.checks if c.error]

    @property
    def passed(self) -> bool:
        """Every check passed and every task is done."""
        return not self.failed and all(p.done for p in self.phases)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "passed": self.passed,
            "phases": [p.to_dict() for p in self.phases],
        }
