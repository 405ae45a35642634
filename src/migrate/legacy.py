"""The legacy application run the way its own host ran it: in this process.

This is the baseline the migrated system is measured against (benchmarks,
and the end-to-end tests' expected events): each plugin's entrypoint is
imported from its directory under a private module name and called directly,
and `chain()` follows the event graph breadth-first with the rules the
runtime's workers follow (DESIGN 3.9): a result becomes one event of type
`result["event"]` when that is one of the plugin's `produces`, else of its
single produced type; no event when it produces nothing or returns None.
"""

from __future__ import annotations

import importlib.util
import sys
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from migrate.errors import InventoryError
from migrate.inventory import Plugin

Handler = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Event:
    type: str
    payload: dict[str, Any]
    source: str  # the plugin that produced it; "" for the first event
    parent: int | None  # index of the event it came from in the chain's list


def load_handler(plugin: Plugin) -> Handler:
    """Import the plugin's entrypoint from its directory, as the legacy host did."""
    module_name, _, function = plugin.entrypoint.partition(":")
    source = plugin.module_file
    if source is None:
        raise InventoryError(
            f"plugin {plugin.name!r}: no module for entrypoint {plugin.entrypoint}",
            file=plugin.path,
            hint="fix `entrypoint` in its plugin.yaml",
        )
    unique = f"_migrate_legacy_{abs(hash(str(plugin.path)))}_{module_name.replace('.', '_')}"
    spec = importlib.util.spec_from_file_location(unique, source)
    if spec is None or spec.loader is None:
        raise InventoryError(f"cannot import {source}", file=source)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(plugin.path))  # the plugin's sibling modules, as the host had them
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(plugin.path))
    handler = getattr(module, function, None)
    if not callable(handler):
        raise InventoryError(f"{source} defines no {function!r}", file=source)
    return handler  # type: ignore[no-any-return]


def produced_type(plugin: Plugin, result: Any) -> str | None:
    """The type of the event a result becomes, or None for no event."""
    produces = list(plugin.manifest.events.produces)
    if result is None or not produces:
        return None
    wanted = result.get("event") if isinstance(result, dict) else None
    if wanted in produces:
        return str(wanted)
    if len(produces) == 1:
        return produces[0]
    raise ValueError(
        f"plugin {plugin.name!r} returned event {wanted!r}, not one of its produces {produces}"
    )


class Chain:
    """The legacy plugins loaded once, ready to run the event graph in-process."""

    def __init__(self, plugins: Iterable[Plugin]) -> None:
        self.plugins = sorted(plugins, key=lambda p: p.name)
        self.handlers = {p.name: load_handler(p) for p in self.plugins}

    def consumers(self, type: str) -> list[Plugin]:
        return [p for p in self.plugins if type in p.manifest.events.consumes]

    def run(self, type: str, payload: dict[str, Any], *, limit: int = 10_000) -> list[Event]:
        """Every event of one run, the first included, in breadth-first order."""
        events = [Event(type, payload, "", None)]
        queue = deque([0])
        while queue:
            index = queue.popleft()
            event = events[index]
            for plugin in self.consumers(event.type):
                result = self.handlers[plugin.name](dict(event.payload))
                kind = produced_type(plugin, result)
                if kind is None:
                    continue
                events.append(Event(kind, dict(result), plugin.name, index))
                if len(events) > limit:
                    raise RuntimeError(f"the chain from {type!r} produced over {limit} events")
                queue.append(len(events) - 1)
        return events
