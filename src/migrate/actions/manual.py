"""`manual`: nothing to apply; the task is done when its checks pass."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from migrate.engine.change import Change, Receipt

if TYPE_CHECKING:
    from pydantic import BaseModel

    from migrate.engine.context import Context
    from migrate.roadmap import Task


class ManualAction:
    kind: ClassVar[str] = "manual"
    Params: ClassVar[type[BaseModel] | None] = None

    def plan(self, ctx: Context, task: Task) -> list[Change]:
        checks = len(task.checks)
        return [
            Change(
                task=task.id,
                action=self.kind,
                op="noop",
                resource=f"manual:{task.id}",
                summary=f"nothing to apply: done when its {checks} check(s) pass",
            )
        ]

    def prepare(self, ctx: Context, change: Change) -> Receipt:
        return {}

    def apply(self, ctx: Context, change: Change) -> Receipt:
        return {}

    def rollback(self, ctx: Context, receipt: Receipt) -> None:
        return None
