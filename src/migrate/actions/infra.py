"""`infra`: the cluster ground a phase stands on (namespace, quotas, RBAC), through Pulumi.

It renders and provisions like `manifests` (same plan, receipts and
rollback); only its parameters differ: `resources` instead of `components`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from migrate.actions.manifests import RenderedAction
from migrate.manifests.components import InfraParams

if TYPE_CHECKING:
    from pydantic import BaseModel


class InfraAction(RenderedAction):
    kind: ClassVar[str] = "infra"
    Params: ClassVar[type[BaseModel] | None] = InfraParams
