"""Which module implements each action kind. Modules are imported on first use."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from migrate.errors import MigrateError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from migrate.actions.base import Action

_IMPLEMENTATIONS: dict[str, str] = {
    "manual": "migrate.actions.manual:ManualAction",
    "files": "migrate.actions.files:FilesAction",
    "manifests": "migrate.actions.manifests:ManifestsAction",
    "infra": "migrate.actions.infra:InfraAction",
    "images": "migrate.actions.images:ImagesAction",
    "data": "migrate.actions.data:DataAction",
}
_cache: dict[str, Action] = {}


def get(kind: str) -> Action:
    if kind not in _cache:
        try:
            target = _IMPLEMENTATIONS[kind]
        except KeyError:
            raise MigrateError(f"unknown action kind {kind!r}") from None
        module, _, name = target.partition(":")
        _cache[kind] = getattr(importlib.import_module(module), name)()
    return _cache[kind]


@contextmanager
def override(kind: str, action: Action) -> Iterator[Action]:
    """Use `action` for `kind` inside the block, then what was there before: how tests
    stand in for an action kind (a supported way, instead of patching the cache)."""
    if kind not in _IMPLEMENTATIONS:
        raise MigrateError(f"unknown action kind {kind!r}")
    missing = object()
    previous = _cache.get(kind, missing)
    _cache[kind] = action
    try:
        yield action
    finally:
        if previous is missing:
            _cache.pop(kind, None)
        else:
            _cache[kind] = previous  # type: ignore[assignment]


def params_model(kind: str) -> type[BaseModel] | None:
    return get(kind).Params if kind in _IMPLEMENTATIONS else None
