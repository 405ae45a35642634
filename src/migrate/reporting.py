"""How the core reports progress without printing.

The CLI binds a Rich console and progress bars to a `Reporter`; tests bind a
`RecordingReporter`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class Reporter(Protocol):
    def start(
        self, key: str, description: str, total: float | None = None, unit: str = "items"
    ) -> None:
        """Begin a unit of work; `unit` "bytes" shows sizes and speed."""
        ...

    def advance(self, key: str, amount: float = 1) -> None: ...
    def done(self, key: str, message: str | None = None) -> None: ...
    def info(self, message: str) -> None: ...
    def warn(self, message: str) -> None: ...


class NullReporter:
    def start(
        self, key: str, description: str, total: float | None = None, unit: str = "items"
    ) -> None:
        pass

    def advance(self, key: str, amount: float = 1) -> None:
        pass

    def done(self, key: str, message: str | None = None) -> None:
        pass

    def info(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass


@dataclass
class RecordingReporter:
    """Keeps every event, for tests: `events` is a list of (kind, key-or-message, detail)."""

    events: list[tuple[str, str, object]] = field(default_factory=list)

    def start(
        self, key: str, description: str, total: float | None = None, unit: str = "items"
    ) -> None:
        self.events.append(("start", key, description))

    def advance(self, key: str, amount: float = 1) -> None:
        self.events.append(("advance", key, amount))

    def done(self, key: str, message: str | None = None) -> None:
        self.events.append(("done", key, message))

    def info(self, message: str) -> None:
        self.events.append(("info", message, None))

    def warn(self, message: str) -> None:
        self.events.append(("warn", message, None))

    @property
    def warnings(self) -> list[str]:
        return [key for kind, key, _ in self.events if kind == "warn"]
