"""Name rules: dataset -> table (DESIGN 3.5), plugin -> image repository (DESIGN 3.7)."""

from __future__ import annotations

import hashlib
import re

MAX_IDENTIFIER = 63  # PostgreSQL's NAMEDATALEN - 1, in bytes
_NOT_TABLE_CHAR = re.compile(r"[^a-z0-9_]")
_NOT_REPO_CHAR = re.compile(r"[^a-z0-9]+")


def _short_hash(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def table_name(dataset: str) -> str:
    """Table of a dataset: `/` -> `__`, lower-cased, other characters outside
    `[a-z0-9_]` -> `_`, cut to 63 characters with a short hash suffix when longer.

    The hash is of the dataset path, so two long datasets that share a prefix
    get different tables.
    """
    name = _NOT_TABLE_CHAR.sub("_", dataset.replace("/", "__").lower())
    if len(name) > MAX_IDENTIFIER:
        suffix = "_" + _short_hash(dataset)
        name = name[: MAX_IDENTIFIER - len(suffix)] + suffix
    return name


def image_repository_name(plugin: str) -> str:
    """A valid Docker repository path component for a plugin name.

    Lower-case; runs of characters outside `[a-z0-9]` become one `-`; no
    leading or trailing separator; at most 63 characters (hash suffix when cut).
    `Report-Writer` -> `report-writer`, `code_reviewer` -> `code-reviewer`.
    """
    name = _NOT_REPO_CHAR.sub("-", plugin.lower()).strip("-")
    if not name:
        name = "plugin-" + _short_hash(plugin)
    if len(name) > MAX_IDENTIFIER:
        suffix = "-" + _short_hash(plugin)
        name = name[: MAX_IDENTIFIER - len(suffix)].rstrip("-") + suffix
    return name


def image_repository(prefix: str, plugin: str) -> str:
    """`<registry or project>/<plugin>` with the plugin part made valid."""
    return f"{prefix.rstrip('/')}/{image_repository_name(plugin)}"
