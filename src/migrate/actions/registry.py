"""Which module implements each action kind, and each task's `with:` block checked.

Kind `k` is class `KAction` of module `migrate.actions.k`, for each kind of
`migrate.roadmap.ACTION_KINDS` (the one list of kinds). Modules are imported on
first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from migrate.errors import MigrateError, RoadmapError
from migrate.roadmap import ACTION_KINDS

if TYPE_CHECKING:
    from pydantic import BaseModel

    from migrate.actions.base import Action
    from migrate.engine.context import Context
    from migrate.roadmap import Task

_IMPLEMENTATIONS: dict[str, str] = {
    kind: f"migrate.actions.{kind}:{kind.capitalize()}Action" for kind in ACTION_KINDS
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


def check_params(ctx: Context) -> None:
    """Validate every task's `with:` block once, after its `{{ }}` are expanded, and keep
    the result in `ctx.task_params` (what `actions.base.params` hands the actions).

    Called where the project is assembled (`migrate.project.open_context`). An error
    names the roadmap file, the line and the key path, as load errors do.
    """
    for phase_index, phase in enumerate(ctx.roadmap.phases):
        for task_index, task in enumerate(phase.tasks):
            where = ("phases", phase_index, "tasks", task_index, "with")
            ctx.task_params[task.id] = _validated(ctx, task, where)


def task_params(ctx: Context, task: Task) -> Any:
    """The task's `with:` parameters, expanded and validated (once per context)."""
    if task.id not in ctx.task_params:
        phase, _ = ctx.roadmap.task(task.id)
        where = (
            "phases",
            ctx.roadmap.phases.index(phase),
            "tasks",
            phase.tasks.index(task) if task in phase.tasks else 0,
            "with",
        )
        ctx.task_params[task.id] = _validated(ctx, task, where)
    return ctx.task_params[task.id]


def _validated(ctx: Context, task: Task, where: tuple[str | int, ...]) -> Any:
    from pydantic import ValidationError

    model = params_model(task.action)
    expanded = ctx.expand(task.with_)  # an expansion error names its file:line already
    if model is None:
        return expanded
    try:
        return model.model_validate(expanded)
    except ValidationError as exc:
        from migrate import yamlfile

        located = ctx.roadmap.located or yamlfile.Located(
            None, ctx.project_dir / ctx.config.roadmap
        )
        raise yamlfile.validation_error(
            exc, located, model, error=RoadmapError, prefix=where
        ) from None
