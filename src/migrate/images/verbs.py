"""`migrate images build|list|rollback` as functions over a project directory.

Each works on a selection (`targets.select`): every plugin's image and the
orchestrator's, or those named by `plugins` and `orchestrator`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate.images import builder, engine, ledger
from migrate.images.builder import Outcome
from migrate.images.context import ORCHESTRATOR, SERVICE
from migrate.images.errors import ImageError, ImagesFailedError
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
            "failed": [o.name for o in self.failures],
        }

    def error(self) -> ImagesFailedError | None:
        """One error that names every failed image and why, or None."""
        if not self.failures:
            return None
        built = len(self.images) - len(self.failures)
        reasons = "\n".join(f"  - {o.error.render() if o.error else o.name}" for o in self.failures)
        return ImagesFailedError(
            f"{len(self.failures)} of {len(self.images)} image(s) failed ({built} ok):\n{reasons}",
            hint="fix those plugins and run `migrate images build` again: images already built "
            "are not rebuilt",
        )


def build(
    project_dir: Path,
    plugins: Sequence[str] | None = None,
    *,
    orchestrator: bool | None = None,
    push: bool = False,
    jobs: int | None = None,
    reporter: Reporter | None = None,
) -> BuildResult:
    """Build every selected image that the engine does not have yet (see `targets.select`)."""
    from migrate.project import open_context
    from migrate.state.lock import ProjectLock

    ctx = open_context(project_dir, reporter)
    if push:
        builder.require_registry(ctx)
    targets = builder.selected_targets(ctx, builder.select(ctx, plugins, orchestrator))
    with ProjectLock(ctx.state_dir, "images build"):
        # no client yet: one is connected only when an image is to be built or pushed
        outcomes = builder.build_all(ctx, None, targets, push=push, jobs=jobs)
        for outcome in outcomes:
            if outcome.error is None:
                ledger.record(
                    ctx.state_dir,
                    outcome.plugin,
                    outcome.image,
                    created=outcome.built,
                    pushed=outcome.pushed,
                    role=outcome.role,
                )
    return BuildResult(outcomes)


@dataclass(frozen=True)
class ListedImage:
    plugin: str | None  # None: the orchestrator
    image: str
    current: bool  # the tag of the image's present content
    created: str  # ISO time
    size: int  # bytes
    role: str = SERVICE

    @property
    def name(self) -> str:
        return self.plugin if self.plugin is not None else ORCHESTRATOR

    def to_dict(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin,
            "role": self.role,
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


def _identity(labels: dict[str, str]) -> tuple[str | None, str] | None:
    """(plugin or None, role) from an image's labels; None: not one of migrate's images."""
    if labels.get("io.migrate.role") == ORCHESTRATOR:
        return None, ORCHESTRATOR
    plugin = labels.get("io.migrate.plugin")
    return (plugin, SERVICE) if plugin else None


def list_images(
    project_dir: Path, plugins: Sequence[str] | None = None, *, orchestrator: bool | None = None
) -> ImageList:
    """The engine's images of this project (by label): plugins by name, then the
    orchestrator; the current tag of each first."""
    from migrate.project import open_context

    ctx = open_context(project_dir)
    selection = builder.select(ctx, plugins, orchestrator)
    current = {t.image for t in builder.selected_targets(ctx, selection) if t.image}
    found = []
    for image in engine.project_images(None, ctx.config.project):
        identity = _identity(image.get("Labels") or {})
        if identity is None or not selection.includes(identity[0]):
            continue
        plugin, role = identity
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
                    role=role,
                )
            )
    found.sort(key=lambda i: (i.plugin is None, i.plugin or "", not i.current, i.created, i.image))
    return ImageList(found)


@dataclass(frozen=True)
class RemovedImage:
    plugin: str | None  # None: the orchestrator
    image: str
    role: str = SERVICE

    @property
    def name(self) -> str:
        return self.plugin if self.plugin is not None else ORCHESTRATOR

    def to_dict(self) -> dict[str, Any]:
        return {"plugin": self.plugin, "role": self.role, "image": self.image}


@dataclass(frozen=True)
class RollbackResult:
    removed: list[RemovedImage]
    missing: list[RemovedImage]  # recorded, but already gone from the engine

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "removed": [r.to_dict() for r in self.removed],
            "already_gone": [r.to_dict() for r in self.missing],
        }


def rollback(
    project_dir: Path,
    plugins: Sequence[str] | None = None,
    *,
    orchestrator: bool | None = None,
    reporter: Reporter | None = None,
) -> RollbackResult:
    """Remove the tags that builds created (of the selected images), and only those."""
    from migrate.project import open_context
    from migrate.state.lock import ProjectLock

    ctx = open_context(project_dir, reporter)
    selection = builder.select(ctx, plugins, orchestrator)
    with ProjectLock(ctx.state_dir, "images rollback"):
        entries = [
            e
            for e in ledger.load(ctx.state_dir)
            if selection.includes(None if e.role == ORCHESTRATOR else e.plugin)
        ]
        if not entries:
            return RollbackResult([], [])
        client = engine.connect()
        removed: list[RemovedImage] = []
        missing: list[RemovedImage] = []
        done: set[str] = set()
        ctx.reporter.start("images:rollback", "removing image tags", len(entries))
        try:
            for entry in reversed(entries):
                try:
                    gone = engine.remove(client, entry.image)
                except ImageError:
                    ledger.forget(ctx.state_dir, done)
                    raise
                item = RemovedImage(entry.plugin, entry.image, entry.role)
                (removed if gone else missing).append(item)
                done.add(entry.image)
                ctx.reporter.advance("images:rollback")
        finally:
            ctx.reporter.done("images:rollback")
        ledger.forget(ctx.state_dir, done)
    return RollbackResult(removed, missing)
