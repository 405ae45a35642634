"""Legacy single-process host: load a plugin and call its ``handle`` directly.

Usage: python app.py <plugin-dir-name> ['{"json": "payload"}']
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

PLUGINS = Path(__file__).resolve().parent / "plugins"
DEFAULT_ENTRYPOINT = "plugin:handle"


def read_entrypoint(plugin_dir: Path) -> str:
    """Minimal plugin.yaml reader: only the top-level ``entrypoint:`` key."""
    manifest = plugin_dir / "plugin.yaml"
    lines = manifest.read_text(encoding="utf-8").splitlines() if manifest.exists() else []
    for line in lines:
        key, _, value = line.partition(":")
        if key == "entrypoint" and value.strip():
            return value.split("#")[0].strip().strip("\"'")
    return DEFAULT_ENTRYPOINT


def load(plugin: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Import ``<plugin>/<module>.py`` under a unique name; return its function."""
    plugin_dir = PLUGINS / plugin
    module_name, _, func = read_entrypoint(plugin_dir).partition(":")
    path = plugin_dir / f"{module_name.replace('.', '/')}.py"
    spec = importlib.util.spec_from_file_location(f"legacy_plugins.{plugin}.{module_name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handle: Callable[[dict[str, Any]], dict[str, Any]] = getattr(module, func or "handle")
    return handle


if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) > 1 else "planner"
    payload = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    print(json.dumps(load(name)(payload), indent=2, ensure_ascii=False))
