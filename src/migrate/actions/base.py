"""The Action protocol every action kind implements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pydantic import BaseModel

    from migrate.engine.change import Change, Receipt
    from migrate.engine.context import Context
    from migrate.roadmap import Task


class Action(Protocol):
    kind: ClassVar[str]
    #: pydantic model of the task's `with` parameters, or None when free-form
    Params: ClassVar[type[BaseModel] | None]

    def plan(self, ctx: Context, task: Task) -> list[Change]:
        """What applying `task` would change. Pure: reads facts, changes nothing."""
        ...

    def prepare(self, ctx: Context, change: Change) -> Receipt:
        """Record what undoing needs *before* anything is changed (journaled first)."""
        ...

    def apply(self, ctx: Context, change: Change) -> Receipt:
        """Make the change. Idempotent: applying twice equals applying once."""
        ...

    def rollback(self, ctx: Context, receipt: Receipt) -> str | None:
        """Undo a change from its receipt. Idempotent; tolerates a change half made.

        Returns what could not be restored (said to the user), or None."""
        ...


def params(ctx: Context, task: Task) -> Any:
    """The task's `with:` parameters, `{{ }}` expanded and validated against its kind's
    `Params`: once, where the project was assembled (`registry.check_params`)."""
    from migrate.actions import registry

    return registry.task_params(ctx, task)


class ConcurrentAction(Action, Protocol):
    """An action whose changes of one task are independent of each other: `apply` runs
    them concurrently (each still journaled on its own). `prepare`, `apply` and what
    they call must then be safe to run from several threads at once."""

    def max_workers(self, ctx: Context, jobs: int | None) -> int:
        """How many changes to make at once, given `apply --jobs` (None: the default)."""
        ...

    def waves(self, ctx: Context, changes: Sequence[Change]) -> list[list[Change]]:
        """`changes` split into groups run one after another (each group concurrently),
        e.g. so that later ones find what earlier ones made in a cache. Every change
        in exactly one group."""
        ...


def max_workers(action: Action, ctx: Context, jobs: int | None) -> int:
    """How many changes of `action` `apply` makes at once: 1 unless it is a
    `ConcurrentAction` (declares `max_workers`)."""
    limit = getattr(action, "max_workers", None)
    return 1 if limit is None else max(1, int(limit(ctx, jobs)))


def waves(action: Action, changes: Sequence[Change], ctx: Context) -> list[list[Change]]:
    """The groups `apply` runs one after another: the action's `waves`, or one group."""
    split = getattr(action, "waves", None)
    return [list(changes)] if split is None else list(split(ctx, changes))
