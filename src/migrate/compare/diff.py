"""JSON differences, paths and noise.

A path is a tuple of keys (str) and indices (int), written `$.a.b[0]` (a key
that is not an identifier: `$["Report Writer"]`). A pattern may hold `*` for
any key or index (`$.items[*].id`) and covers the subtree below it. Noise is
what primary and secondary disagree on, with list indices made `*`, so noise
seen on one input is noise on every input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Path = tuple[str | int, ...]
WILD = "*"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN = re.compile(r"""\.([A-Za-z_][A-Za-z0-9_]*|\*)|\[(\d+|\*)\]|\[("(?:[^"\\]|\\.)*")\]""")


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()  # a key one side has and the other has not


@dataclass(frozen=True)
class Difference:
    path: Path
    legacy: Any  # ABSENT: the key is only on the migrated side
    migrated: Any  # ABSENT: the key is missing on the migrated side

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {"path": render(self.path)}
        if self.legacy is not ABSENT:
            document["legacy"] = self.legacy
        if self.migrated is not ABSENT:
            document["migrated"] = self.migrated
        return document

    def describe(self, limit: int = 80) -> str:
        where = render(self.path)
        if self.migrated is ABSENT:
            return f"{where}: missing in migrated (legacy: {short(self.legacy, limit)})"
        if self.legacy is ABSENT:
            return f"{where}: only in migrated ({short(self.migrated, limit)})"
        return (
            f"{where}: legacy {short(self.legacy, limit)} != migrated {short(self.migrated, limit)}"
        )


def short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render(path: Iterable[str | int]) -> str:
    parts = ["$"]
    for step in path:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif step == WILD:
            parts.append("[*]")
        elif _IDENT.match(step):
            parts.append(f".{step}")
        else:
            parts.append(f"[{json.dumps(step, ensure_ascii=False)}]")
    return "".join(parts)


def parse(pattern: str) -> Path:
    """`$.a[0].b`, `$.items[*].id`, `$["odd key"]` -> a path; `ValueError` when malformed."""
    text = pattern.strip()
    if not text.startswith("$"):
        raise ValueError(f"{pattern!r} is not a JSON path: start it with $, e.g. $.created_at")
    steps: list[str | int] = []
    position = 1
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ValueError(
                f"{pattern!r} is not a JSON path (at {text[position:]!r}): write $.key, "
                '$.list[0], $.list[*].key or $["a key"]'
            )
        name, index, quoted = match.groups()
        if name is not None:
            steps.append(name)
        elif index is not None:
            steps.append(WILD if index == WILD else int(index))
        else:
            steps.append(str(json.loads(quoted)))
        position = match.end()
    return tuple(steps)


def general(path: Path) -> Path:
    """The path with every list index made `*`."""
    return tuple(WILD if isinstance(step, int) else step for step in path)


def covers(pattern: Path, path: Path) -> bool:
    """`pattern` names `path` or one of its ancestors."""
    if len(pattern) > len(path):
        return False
    return all(p in (WILD, s) for p, s in zip(pattern, path, strict=False))


def differences(legacy: Any, migrated: Any, path: Path = ()) -> list[Difference]:
    """Where two JSON values differ; 1 and 1.0, and true and 1, are different."""
    if isinstance(legacy, dict) and isinstance(migrated, dict):
        found: list[Difference] = []
        for key in legacy:
            if key in migrated:
                found.extend(differences(legacy[key], migrated[key], (*path, key)))
            else:
                found.append(Difference((*path, key), legacy[key], ABSENT))
        for key in migrated:
            if key not in legacy:
                found.append(Difference((*path, key), ABSENT, migrated[key]))
        return found
    if isinstance(legacy, list) and isinstance(migrated, list) and len(legacy) == len(migrated):
        found = []
        for index, (a, b) in enumerate(zip(legacy, migrated, strict=True)):
            found.extend(differences(a, b, (*path, index)))
        return found
    if type(legacy) is type(migrated) and legacy == migrated:
        return []
    return [Difference(path, legacy, migrated)]


def noise(primary: Any, secondary: Any) -> set[Path]:
    """The general paths where two runs of the same code on the same input disagree."""
    return {general(d.path) for d in differences(primary, secondary)}


def beyond(found: Iterable[Difference], ignored: Iterable[Path]) -> list[Difference]:
    """The differences no ignored pattern covers."""
    patterns = list(ignored)
    return [d for d in found if not any(covers(p, d.path) for p in patterns)]


def contains(recorded: Any, answer: Any, ignored: Iterable[Path] = ()) -> bool:
    """Every value the record holds is in the answer (a record may keep only some keys)."""
    patterns = list(ignored)

    def walk(record: Any, value: Any, path: Path) -> bool:
        if any(covers(p, path) for p in patterns):
            return True
        if isinstance(record, dict):
            return isinstance(value, dict) and all(
                key in value and walk(item, value[key], (*path, key))
                for key, item in record.items()
            )
        if isinstance(record, list):
            return (
                isinstance(value, list)
                and len(value) == len(record)
                and all(
                    walk(a, b, (*path, i))
                    for i, (a, b) in enumerate(zip(record, value, strict=True))
                )
            )
        return type(record) is type(value) and bool(record == value)

    return walk(recorded, answer, ())
