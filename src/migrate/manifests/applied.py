"""The set of objects last applied, per phase and task, and the diff against it.

`apply` of a `manifests` or `infra` task records what it provisioned in
`.migrate/manifests/applied/phase-N/<task>.json` (objects and Helm releases;
never a secret, since none is rendered). `plan` diffs the freshly rendered
objects against that record when no Pulumi preview is available, and the
Pulumi program of a phase declares the union of the phase's records.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate.manifests.model import TaskManifests, dump

Record = dict[str, Any]


def record_file(state_dir: Path, phase: int, task: str) -> Path:
    return state_dir / "manifests" / "applied" / f"phase-{phase}" / f"{task}.json"


def load(state_dir: Path, phase: int, task: str) -> Record | None:
    path = record_file(state_dir, phase, task)
    if not path.is_file():
        return None
    data: Record = json.loads(path.read_text(encoding="utf-8"))
    return data


def save(state_dir: Path, record: Record) -> None:
    path = record_file(state_dir, int(record["phase"]), str(record["task"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def delete(state_dir: Path, phase: int, task: str) -> None:
    record_file(state_dir, phase, task).unlink(missing_ok=True)


def phase_records(state_dir: Path, phase: int) -> list[Record]:
    """Every task's record of a phase, in task-id order."""
    directory = state_dir / "manifests" / "applied" / f"phase-{phase}"
    return [
        json.loads(path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.json"))
    ]


def _key(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata", {})
    namespace = metadata.get("namespace")
    where = f"{namespace}/" if namespace else ""
    return f"{obj.get('kind')} {where}{metadata.get('name')}"


@dataclass
class TaskDiff:
    """Per object of one task: what applying the rendered set would do."""

    create: list[str] = field(default_factory=list)
    update: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    releases_changed: list[str] = field(default_factory=list)
    text: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.create or self.update or self.delete or self.releases_changed)

    def summary(self) -> str:
        parts = [
            f"{len(items)} to {verb}"
            for verb, items in (
                ("create", self.create),
                ("update", self.update),
                ("delete", self.delete),
            )
            if items
        ]
        if self.releases_changed:
            parts.append(f"{len(self.releases_changed)} Helm release(s) to install or upgrade")
        if self.unchanged:
            parts.append(f"{len(self.unchanged)} unchanged")
        return ", ".join(parts) or "nothing rendered"


def diff(rendered: TaskManifests, record: Record | None) -> TaskDiff:
    """The rendered objects of a task against its last applied record."""
    old = {_key(obj): obj for obj in (record or {}).get("objects", [])}
    new = {m.ref: m.obj for m in rendered.manifests}
    result = TaskDiff()
    lines: list[str] = []
    for key in sorted(new.keys() | old.keys()):
        if key not in old:
            result.create.append(key)
            lines.append(f"+ {key}")
        elif key not in new:
            result.delete.append(key)
            lines.append(f"- {key}")
        elif old[key] != new[key]:
            result.update.append(key)
            lines.append(f"~ {key}")
            lines.extend(
                line.rstrip("\n")
                for line in difflib.unified_diff(
                    dump(old[key]).splitlines(keepends=True),
                    dump(new[key]).splitlines(keepends=True),
                    "applied",
                    "rendered",
                    n=1,
                )
            )
        else:
            result.unchanged.append(key)
    old_releases = {r["name"]: r for r in (record or {}).get("releases", [])}
    for release in rendered.releases:
        wanted = release.to_dict() | {"component": release.component}
        if old_releases.get(release.name) != wanted:
            result.releases_changed.append(release.name)
            lines.append(f"~ helm {release.name} {release.chart}@{release.version}")
    for name in sorted(old_releases.keys() - {r.name for r in rendered.releases}):
        result.releases_changed.append(name)
        lines.append(f"- helm {name}")
    result.text = "\n".join(lines)
    return result
