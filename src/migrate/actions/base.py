"""The Action protocol every action kind implements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
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


def params(action: Action, task: Task) -> Any:
    """The task's validated `with` parameters (the roadmap loader validated them already)."""
    if action.Params is None:
        return task.with_
    return action.Params.model_validate(task.with_)
