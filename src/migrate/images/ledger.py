"""Which image tags migrate created (and pushed): `.migrate/images.json`.

`images rollback` removes exactly these, so a tag that existed before a
build (made by hand, or by another project) is never removed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

LEDGER = "images.json"


@dataclass(frozen=True)
class Entry:
    plugin: str | None  # None: the orchestrator's image
    image: str
    created_at: str
    pushed: bool = False
    role: str = "service"  # or "orchestrator" (ledgers written before it had none: service)


def _path(state_dir: Path) -> Path:
    return state_dir / LEDGER


def load(state_dir: Path) -> list[Entry]:
    path = _path(state_dir)
    if not path.is_file():
        return []
    document = json.loads(path.read_text(encoding="utf-8"))
    return [Entry(**item) for item in document.get("images", [])]


def save(state_dir: Path, entries: list[Entry]) -> None:
    path = _path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{LEDGER}.tmp")
    document = {"version": 1, "images": [asdict(e) for e in entries]}
    tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def record(
    state_dir: Path,
    plugin: str | None,
    image: str,
    *,
    created: bool,
    pushed: bool,
    role: str = "service",
) -> None:
    """Remember a tag migrate created, or that it pushed one it already had recorded.
    `plugin` is None for the orchestrator's image (role `orchestrator`)."""
    entries = load(state_dir)
    known = {e.image: e for e in entries}
    if image in known:
        if pushed and not known[image].pushed:
            entries = [
                Entry(e.plugin, e.image, e.created_at, True, e.role) if e.image == image else e
                for e in entries
            ]
    elif created:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        entries.append(Entry(plugin, image, now, pushed, role))
    else:
        return
    save(state_dir, entries)


def forget(state_dir: Path, images: set[str]) -> None:
    save(state_dir, [e for e in load(state_dir) if e.image not in images])


def pushed(state_dir: Path, image: str) -> bool:
    return any(e.image == image and e.pushed for e in load(state_dir))
