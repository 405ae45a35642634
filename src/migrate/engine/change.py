"""A Change: one thing `apply` would do, as data."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

Op = Literal["create", "update", "delete", "noop"]
OPS: tuple[Op, ...] = ("create", "update", "delete", "noop")
SYMBOLS: dict[str, str] = {"create": "+", "update": "~", "delete": "-", "noop": " "}

# What an action's apply returns: how to undo the change (JSON-serialisable, no secrets).
Receipt = dict[str, Any]


@dataclass(frozen=True)
class Change:
    """One change to one resource.

    `data` is what the action needs to apply it (JSON-serialisable, no
    secrets); `detail` is an optional longer description, e.g. a diff.
    `cannot_undo` says why rollback could not reverse the change (alembic's
    operations refuse to be reversed when they lack what they need): plan shows
    it, apply asks about it explicitly, rollback reports it.
    """

    task: str
    action: str
    op: Op
    resource: str
    summary: str
    data: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    detail: str | None = field(default=None, compare=False)
    cannot_undo: str | None = field(default=None, compare=False)

    @property
    def reversible(self) -> bool:
        return self.cannot_undo is None

    @property
    def fingerprint(self) -> str:
        blob = json.dumps([self.op, self.resource, self.data], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def key(self) -> str:
        """Identity in the journal: the same change applied twice has the same key."""
        return f"{self.task}|{self.resource}|{self.fingerprint}"

    @property
    def pending(self) -> bool:
        return self.op != "noop"

    def describe(self) -> str:
        """`+ resource: summary`, Terraform style."""
        return f"{SYMBOLS[self.op]} {self.resource}: {self.summary}"

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "op": self.op,
            "resource": self.resource,
            "summary": self.summary,
            "reversible": self.reversible,
        }
        if self.cannot_undo:
            document["cannot_undo"] = self.cannot_undo
        return document
