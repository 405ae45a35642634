"""One exception root for the whole tool.

`UserError` and its subclasses carry a message a person can act on: where the
problem is (file, line, key path) and what to do. Only the CLI turns them into
text and exit codes.
"""

from __future__ import annotations

from pathlib import Path


class MigrateError(Exception):
    """Root of every error `migrate` raises on purpose."""


class UserError(MigrateError):
    """Something the user can fix: bad input, a missing file, a refused operation."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        file: str | Path | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.hint = hint
        self.file = str(file) if file is not None else None
        self.line = line
        self.key = key
        super().__init__(self.render())

    @property
    def location(self) -> str | None:
        """`file:line: key` — the place the error is about, when known."""
        parts = []
        if self.file:
            parts.append(self.file + (f":{self.line}" if self.line else ""))
        if self.key:
            parts.append(self.key)
        return ": ".join(parts) or None

    def render(self) -> str:
        text = self.message
        if self.location:
            text = f"{self.location}: {text}"
        if self.hint:
            text = f"{text}\n  hint: {self.hint}"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "error": self.message,
            "file": self.file,
            "line": self.line,
            "key": self.key,
            "hint": self.hint,
        }


class ConfigError(UserError):
    """`migrate.yaml` is missing or invalid."""


class RoadmapError(UserError):
    """The roadmap YAML is invalid."""


class InventoryError(UserError):
    """The legacy application's layout or a plugin.yaml is invalid."""


class LockError(UserError):
    """Another migrate run holds the project lock."""


class RefusedError(UserError):
    """An operation refused for safety (a gate, a missing confirmation)."""


class ActionError(MigrateError):
    """An action failed while applying or rolling back a change."""

    def __init__(self, task: str, message: str, *, hint: str | None = None) -> None:
        self.task = task
        self.message = message
        self.hint = hint
        text = f"task {task}: {message}"
        if hint:
            text += f"\n  hint: {hint}"
        super().__init__(text)

    def to_dict(self) -> dict[str, object]:
        """The fields of `--output json`: the task, what failed and what to do."""
        return {"error": self.message, "task": self.task, "hint": self.hint}
