"""`migrate images build|list|rollback` as functions over a project directory."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate.images import builder, engine, ledger
from migrate.images.builder import Outcome
from migrate.images.errors import ImagesFailedError, PluginImageError
from migrate.reporting import Reporter


@dataclass(frozen=True)
class BuildResult:
    images: list[Outcome]

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.images if o.error is not None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "images": [builder.summary(o) for o in self.images],
            "failed": [o.plugin for o in self.failures],
        }

    def error(self) -> ImagesFailedError | None:
        """One error that names every failed plugin and why, or None."""
        if not self.failures:
            return None
        built = len(self.images) - len(self.failures)
        reasons = "\n".join(
            f"  - {o.error.render() if o.error else o.plugin}" for o in self.failures
        )
        return ImagesFailedError(
            f"{len(self.failures)} of {len(self.images)} image(s) failed ({built} ok):\n{reasons}",
            hint="fix those plugins and run `migrate images build` again: images already built "
            "are not rebuilt",
        )


def build(
    project_dir: Path,
    plugins: Sequence[str] | None = None,
    *,
    push: bool = False,
    jobs: int | None = None,
    reporter: Reporter | None = None,
) -> BuildResult:
    """Build the image of every (or each named) plugin that the engine does not have yet."""
    from migrate.project import open_context
    from migrate.state.lock import ProjectLock

    ctx = open_context(project_dir, reporter)
    if push:
        builder.require_registry(ctx)
    selected = builder.select_plugins(ctx, plugins)
    targets = builder.plan_targets(ctx, selected)
    client = engine.connect()
    with ProjectLock(ctx.state_dir, "images build"):
        outcomes = builder.build_all(ctx, client, targets, push=push, jobs=jobs)
        for outcome in outcomes:
            if outcome.error is None:
                ledger.record(
                    ctx.state_dir,
                    outcome.plugin,
                    outcome.image,
                    created=outcome.built,
                    pushed=outcome.pushed,
                )
    return BuildResult(outcomes)


@dataclass(frozen=True)
class ListedImage:
    plugin: str
    image: str
    current: bool  # the tag of the plugin's present content
    created: str  # ISO time
    size: int  # bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin,
            "image": self.image,
            "current": self.current,
            "created": self.created,
            "size": self.size,
        }


@dataclass(frozen=True)
class ImageList:
    images: list[ListedImage] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, "images": [i.to_dict() for i in self.images]}


def list_images(project_dir: Path, plugins: Sequence[str] | None = None) -> ImageList:
    """The engine's images of this project (by label), newest first per plugin."""
    from migrate.project import open_context

    ctx = open_context(project_dir)
    selected = builder.select_plugins(ctx, plugins) if plugins else None
    names = {p.name for p in selected} if selected is not None else None
    current = {
        t.image for t in builder.plan_targets(ctx, selected or ctx.inventory.plugins) if t.image
    }
    client = engine.connect()
    found = []
    for image in engine.project_images(client, ctx.config.project):
        plugin = (image.get("Labels") or {}).get("io.migrate.plugin", "")
        if names is not None and plugin not in names:
            continue
        created = dt.datetime.fromtimestamp(int(image.get("Created") or 0), dt.UTC)
        for tag in image.get("RepoTags") or []:
            if tag == "<none>:<none>":
                continue
            found.append(
                ListedImage(
                    plugin=plugin,
                    image=tag,
                    current=tag in current,
                    created=created.isoformat(timespec="seconds"),
                    size=int(image.get("Size") or 0),
                )
            )
    found.sort(key=lambda i: (i.plugin, not i.current, i.created, i.image))
    return ImageList(found)


@dataclass(frozen=True)
class RollbackResult:
    removed: list[tuple[str, str]]  # (plugin, image)
    missing: list[tuple[str, str]]  # recorded, but already gone from the engine

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "removed": [{"plugin": p, "image": i} for p, i in self.removed],
            "already_gone": [{"plugin": p, "image": i} for p, i in self.missing],
        }


def rollback(
    project_dir: Path,
    plugins: Sequence[str] | None = None,
    *,
    reporter: Reporter | None = None,
) -> RollbackResult:
    """Remove the tags that builds created (all, or the named plugins'), and only those."""
    from migrate.project import open_context
    from migrate.state.lock import ProjectLock

    ctx = open_context(project_dir, reporter)
    names = {p.name for p in builder.select_plugins(ctx, plugins)} if plugins else None
    with ProjectLock(ctx.state_dir, "images rollback"):
        entries = [e for e in ledger.load(ctx.state_dir) if names is None or e.plugin in names]
        if not entries:
            return RollbackResult([], [])
        client = engine.connect()
        removed: list[tuple[str, str]] = []
        missing: list[tuple[str, str]] = []
        done: set[str] = set()
        ctx.reporter.start("images:rollback", "removing image tags", len(entries))
        try:
            for entry in reversed(entries):
                try:
                    gone = engine.remove(client, entry.image)
                except PluginImageError:
                    ledger.forget(ctx.state_dir, done)
                    raise
                (removed if gone else missing).append((entry.plugin, entry.image))
                done.add(entry.image)
                ctx.reporter.advance("images:rollback")
        finally:
            ctx.reporter.done("images:rollback")
        ledger.forget(ctx.state_dir, done)
    return RollbackResult(removed, missing)
