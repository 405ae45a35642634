"""`.migrate/dev.json`: what the last `migrate dev up` started, for other commands.

    {"version": 1, "project": str, "network": "host" | "bridge",
     "orchestrator": "http://127.0.0.1:PORT",
     "containers": [{"name", "role", "plugin", "url", "ready"}]}

No secrets: URLs carry no password (the database and bus URLs are not in it at
all). The engine is the truth: `dev status` asks it, not this file; `dev down`
removes the file with the containers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from migrate.config import STATE_DIR

FILE = "dev.json"
VERSION = 1


def path(project_dir: Path) -> Path:
    return project_dir / STATE_DIR / FILE


def load(project_dir: Path) -> dict[str, Any] | None:
    """The document `dev up` wrote, or None when there is none (or it is unreadable)."""
    try:
        document = json.loads(path(project_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("version") != VERSION:
        return None
    return document


def save(project_dir: Path, document: dict[str, Any]) -> Path:
    """Write atomically (a reader never sees half a file)."""
    target = path(project_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{FILE}.tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target


def remove(project_dir: Path) -> bool:
    """Remove the file; False when there was none."""
    try:
        path(project_dir).unlink()
    except FileNotFoundError:
        return False
    return True
