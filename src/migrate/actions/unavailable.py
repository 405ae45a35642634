"""Action kinds this version of migrate can show in a plan but not apply yet."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from migrate.engine.change import Change, Receipt
from migrate.errors import NotAvailableError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from migrate.engine.context import Context
    from migrate.roadmap import Task


class _Unavailable:
    kind: ClassVar[str]
    will: ClassVar[str]  # what the action will do, for the message
    Params: ClassVar[type[BaseModel] | None] = None
    available: ClassVar[bool] = False

    def plan(self, ctx: Context, task: Task) -> list[Change]:
        return [
            Change(
                task=task.id,
                action=self.kind,
                op="create",
                resource=f"{self.kind}:{task.id}",
                summary=f"{self.will} (not available in this version)",
            )
        ]

    def _refuse(self) -> NotAvailableError:
        return NotAvailableError(
            f"the {self.kind} action is not available in this version of migrate yet",
            hint=f"it will {self.will}; meanwhile apply the other tasks with --only TASK",
        )

    def prepare(self, ctx: Context, change: Change) -> Receipt:
        raise self._refuse()

    def apply(self, ctx: Context, change: Change) -> Receipt:
        raise self._refuse()

    def rollback(self, ctx: Context, receipt: Receipt) -> None:
        raise self._refuse()


class ManifestsAction(_Unavailable):
    kind = "manifests"
    will = "render manifests and apply them through Pulumi"


class InfraAction(_Unavailable):
    kind = "infra"
    will = "provision namespace, quotas and RBAC through Pulumi"


class ImagesAction(_Unavailable):
    kind = "images"
    will = "build an image per plugin with Docker"


class DataAction(_Unavailable):
    kind = "data"
    will = "back up, then load every dataset into PostgreSQL"
