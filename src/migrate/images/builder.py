"""Build the images of many plugins: skip the ones the engine has, build the rest
concurrently (bounded), report progress per plugin, keep going past a failure."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from migrate.images import context as contexts
from migrate.images import engine, wheelhouse
from migrate.images.errors import PluginImageError
from migrate.names import image_repository

if TYPE_CHECKING:
    from docker import APIClient

    from migrate.engine.context import Context
    from migrate.images.context import BuildContext
    from migrate.inventory import Plugin

MAX_JOBS = 4


def default_jobs() -> int:
    return max(1, min(MAX_JOBS, os.cpu_count() or 1))


def repository_prefix(ctx: Context) -> str:
    """`target.registry` when set, else the project name (DESIGN 3.7)."""
    return ctx.config.target.registry or ctx.config.project


def require_registry(ctx: Context) -> None:
    """Pushing needs `target.registry`: without it the tag would point at Docker Hub."""
    from migrate.errors import UserError

    if not ctx.config.target.registry:
        raise UserError(
            "--push needs a registry to push to",
            hint="set target.registry in migrate.yaml, e.g. `registry: 127.0.0.1:5000/team`",
        )


def reference(ctx: Context, plugin: str, short_hash: str) -> str:
    """`<registry or project>/<plugin>:<12 hex of the context SHA-256>`."""
    return f"{image_repository(repository_prefix(ctx), plugin)}:{short_hash}"


@dataclass(frozen=True)
class ImageTarget:
    """One plugin's image as planned: its context and tag, or why it cannot be built."""

    plugin: Plugin
    context: BuildContext | None
    image: str  # the reference; "" when the context could not be assembled
    error: PluginImageError | None = None


def select_plugins(ctx: Context, names: Sequence[str] | None) -> list[Plugin]:
    """The plugins to work on: all, or the named ones (an unknown name is an error)."""
    inventory = ctx.inventory
    if not names:
        return list(inventory.plugins)
    return [inventory.plugin(name) for name in dict.fromkeys(names)]


def plan_targets(ctx: Context, plugins: Sequence[Plugin]) -> list[ImageTarget]:
    """Assemble each plugin's context and tag. Pure: no engine, no network."""
    targets = []
    for plugin in plugins:
        try:
            built = contexts.assemble(ctx, plugin)
        except PluginImageError as exc:
            targets.append(ImageTarget(plugin, None, "", exc))
            continue
        targets.append(ImageTarget(plugin, built, reference(ctx, plugin.name, built.short_hash)))
    return targets


@dataclass(frozen=True)
class Outcome:
    plugin: str
    image: str
    built: bool
    pushed: bool
    seconds: float
    error: PluginImageError | None = None


def labels(target: ImageTarget) -> dict[str, str]:
    """Labels that depend on the context hash, so they cannot be in the context."""
    assert target.context is not None
    return {
        "io.migrate.source-hash": target.context.digest,
        "org.opencontainers.image.revision": target.context.digest,
        "org.opencontainers.image.ref.name": target.image,
    }


def build_target(ctx: Context, client: APIClient, target: ImageTarget, *, push: bool) -> Outcome:
    """Build one plugin's image unless the engine has its tag; push when asked.

    Raises `PluginImageError` with the build log when it fails.
    """
    if target.error is not None:
        raise target.error
    assert target.context is not None
    started = time.monotonic()
    key = f"image:{target.plugin.name}"
    reporter = ctx.reporter
    # the engine adds one step for the labels given with the build; a push is one more
    steps = _instruction_count(target.context.dockerfile) + 1 + (1 if push else 0)
    built = False
    reporter.start(key, f"{target.plugin.name}: {target.image}", steps)
    try:
        if not engine.exists(client, target.image):
            wheels = wheelhouse.resolve(
                target.plugin.name, target.context.requirements, ctx.state_dir / "wheelhouse"
            )
            progress = {"step": 0}

            def on_step(step: int, total: int) -> None:
                if step > progress["step"]:
                    reporter.advance(key, step - progress["step"])
                    progress["step"] = step

            try:
                log = engine.build(
                    client,
                    target.plugin.name,
                    target.context.tar(wheels),
                    target.image,
                    labels(target),
                    on_step,
                )
            except PluginImageError as exc:
                _save_log(ctx, target.plugin.name, exc.log or "")
                raise
            _save_log(ctx, target.plugin.name, "\n".join(log))
            built = True
        else:
            reporter.advance(key, steps - (1 if push else 0))
        if push:
            engine.push(client, target.plugin.name, target.image)
            reporter.advance(key)
    finally:
        reporter.done(key)
    seconds = time.monotonic() - started
    return Outcome(target.plugin.name, target.image, built, push, seconds)


def _instruction_count(dockerfile: str) -> int:
    count, continued = 0, False
    for line in dockerfile.splitlines():
        stripped = line.strip()
        if not continued and stripped and not stripped.startswith("#"):
            count += 1
        continued = stripped.endswith("\\") if stripped else continued
    return count


def _save_log(ctx: Context, plugin: str, text: str) -> None:
    """Keep the last build log of each plugin in .migrate/logs/images/."""
    from migrate.names import image_repository_name

    path = ctx.state_dir / "logs" / "images" / f"{image_repository_name(plugin)}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")


def build_all(
    ctx: Context,
    client: APIClient,
    targets: Sequence[ImageTarget],
    *,
    push: bool,
    jobs: int | None = None,
) -> list[Outcome]:
    """Build the targets, `jobs` at a time; a failure is an Outcome, the others go on."""

    def one(target: ImageTarget) -> Outcome:
        try:
            return build_target(ctx, client, target, push=push)
        except PluginImageError as exc:
            return Outcome(target.plugin.name, target.image, False, False, 0.0, exc)
        except Exception as exc:  # an engine hiccup: this plugin fails, the others go on
            error = PluginImageError(target.plugin.name, f"{type(exc).__name__}: {exc}")
            return Outcome(target.plugin.name, target.image, False, False, 0.0, error)

    buildable = [t for t in targets if t.error is None]
    if buildable:
        base = ctx.config.target.base_image
        missing = [t for t in buildable if not engine.exists(client, t.image)]
        if missing:
            engine.ensure_base_image(client, base)
    workers = max(1, jobs or default_jobs())
    # started here, on this thread, so the progress display exists before the workers report
    ctx.reporter.start("images", f"{len(targets)} image(s)", len(targets))
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="image-build") as pool:
            outcomes = []
            for outcome in pool.map(one, targets):
                outcomes.append(outcome)
                ctx.reporter.advance("images")
    finally:
        ctx.reporter.done("images")
    return outcomes


def summary(outcome: Outcome) -> dict[str, Any]:
    document: dict[str, Any] = {
        "plugin": outcome.plugin,
        "image": outcome.image,
        "built": outcome.built,
        "pushed": outcome.pushed,
        "seconds": round(outcome.seconds, 3),
    }
    if outcome.error is not None:
        document["error"] = outcome.error.render()
    return document
