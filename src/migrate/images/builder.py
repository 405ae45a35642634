"""Build many images (the plugins' and the orchestrator's): skip the ones the engine
has, build the rest concurrently (bounded), report progress per image, keep going
past a failure.

Which images the engine has is asked once for all of them (`engine.present`), without
the Docker SDK: a no-op build (every tag present, no push) connects no client, resolves
no wheelhouse and makes no context tar.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from migrate.images import engine, wheelhouse
from migrate.images.context import ORCHESTRATOR, SERVICE
from migrate.images.errors import ImageError
from migrate.images.targets import (
    ImageTarget,
    orchestrator_target,
    plan_targets,
    reference,
    repository_prefix,
    select,
    select_plugins,
    selected_targets,
)

if TYPE_CHECKING:
    from docker import APIClient

    from migrate.engine.context import Context

MAX_JOBS = 4

__all__ = [
    "ImageTarget",
    "Outcome",
    "build_all",
    "build_target",
    "default_jobs",
    "labels",
    "orchestrator_target",
    "plan_targets",
    "python_environment",
    "reference",
    "repository_prefix",
    "require_registry",
    "select",
    "select_plugins",
    "selected_targets",
    "summary",
]


def default_jobs() -> int:
    return max(1, min(MAX_JOBS, os.cpu_count() or 1))


def require_registry(ctx: Context) -> None:
    """Pushing needs `target.registry`: without it the tag would point at Docker Hub."""
    from migrate.errors import UserError

    if not ctx.config.target.registry:
        raise UserError(
            "--push needs a registry to push to",
            hint="set target.registry in migrate.yaml, e.g. `registry: 127.0.0.1:5000/team`",
        )


@dataclass(frozen=True)
class Outcome:
    plugin: str | None  # None: the orchestrator
    image: str
    built: bool
    pushed: bool
    seconds: float
    error: ImageError | None = None
    role: str = SERVICE

    @property
    def name(self) -> str:
        """The plugin's name, or `orchestrator`."""
        return self.plugin if self.plugin is not None else ORCHESTRATOR


def _outcome(target: ImageTarget, **values: Any) -> Outcome:
    plugin = target.plugin.name if target.plugin is not None else None
    return Outcome(plugin=plugin, image=target.image, role=target.role, **values)


def labels(target: ImageTarget) -> dict[str, str]:
    """Labels that depend on the context hash, so they cannot be in the context."""
    assert target.context is not None
    return {
        "io.migrate.source-hash": target.context.digest,
        "org.opencontainers.image.revision": target.context.digest,
        "org.opencontainers.image.ref.name": target.image,
    }


_environments: dict[str, dict[str, str]] = {}
_environments_lock = threading.Lock()


def python_environment(ctx: Context, client: APIClient) -> dict[str, str]:
    """The marker environment of the base image's Python, which requirements are resolved
    for: asked of the engine once per base image, then kept in .migrate/wheelhouse/."""
    base = ctx.config.target.base_image
    image_id = str(engine.inspect(client, base)["Id"]).rpartition(":")[2]
    with _environments_lock:
        if image_id not in _environments:
            path = ctx.state_dir / "wheelhouse" / "environments" / f"{image_id[:16]}.json"
            if path.is_file():
                _environments[image_id] = json.loads(path.read_text(encoding="utf-8"))
            else:
                found = engine.python_environment(client, base)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(found, indent=2, sort_keys=True), encoding="utf-8")
                _environments[image_id] = found
        return dict(_environments[image_id])


def build_target(
    ctx: Context,
    client: APIClient | None,
    target: ImageTarget,
    *,
    push: bool,
    exists: bool | None = None,
) -> Outcome:
    """Build one image unless the engine has its tag; push when asked.

    `exists`: whether the engine has the tag, when the caller asked already (None: ask).
    `client` may be None only when there is nothing to ask or do: `exists` True, no push.
    Raises `ImageError` (`PluginImageError` for a plugin) with the build log when it fails.
    """
    if target.error is not None:
        raise target.error
    assert target.context is not None
    started = time.monotonic()
    key = target.key
    reporter = ctx.reporter
    # the engine adds one step for the labels given with the build; a push is one more
    steps = _instruction_count(target.context.dockerfile) + 1 + (1 if push else 0)
    built = False
    reporter.start(key, f"{target.name}: {target.image}", steps)
    try:
        if exists is None:
            client = client or engine.connect()
            exists = engine.exists(client, target.image)
        if not exists:
            client = client or engine.connect()
            wheels = wheelhouse.resolve(
                target.subject,
                target.context.requirements,
                ctx.state_dir / "wheelhouse",
                python_environment(ctx, client),
            )
            build_steps = steps - (1 if push else 0)
            progress = {"step": 0}

            def on_step(step: int, total: int) -> None:
                # The engine's `Step n/total` counts its own steps (an engine may add or
                # merge some): map them onto the bar's total, so the bar never passes it.
                scaled = min(build_steps, step * build_steps // max(total, 1))
                if scaled > progress["step"]:
                    reporter.advance(key, scaled - progress["step"])
                    progress["step"] = scaled

            try:
                log = engine.build(
                    client,
                    target.subject,
                    target.context.tar(wheels),
                    target.image,
                    labels(target),
                    on_step,
                )
            except ImageError as exc:
                _save_log(ctx, target, exc.log or "")
                raise
            _save_log(ctx, target, "\n".join(log))
            if progress["step"] < build_steps:  # an engine that printed fewer steps
                reporter.advance(key, build_steps - progress["step"])
            built = True
        else:
            reporter.advance(key, steps - (1 if push else 0))
        if push:
            client = client or engine.connect()
            engine.push(client, target.subject, target.image)
            reporter.advance(key)
    finally:
        reporter.done(key)
    seconds = time.monotonic() - started
    return _outcome(target, built=built, pushed=push, seconds=seconds)


def _instruction_count(dockerfile: str) -> int:
    count, continued = 0, False
    for line in dockerfile.splitlines():
        stripped = line.strip()
        if not continued and stripped and not stripped.startswith("#"):
            count += 1
        continued = stripped.endswith("\\") if stripped else continued
    return count


def _save_log(ctx: Context, target: ImageTarget, text: str) -> None:
    """Keep the last build log of each image in .migrate/logs/images/<repository>.log."""
    path = ctx.state_dir / "logs" / "images" / f"{target.log_name}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")


def build_all(
    ctx: Context,
    client: APIClient | None,
    targets: Sequence[ImageTarget],
    *,
    push: bool,
    jobs: int | None = None,
) -> list[Outcome]:
    """Build the targets, `jobs` at a time; a failure is an Outcome, the others go on.

    `client`: None connects one only when an image is to be built or pushed. Raises
    `DockerUnavailableError` when no engine answers.
    """
    buildable = [t for t in targets if t.error is None]
    # one question for every tag; a tag not listed is asked again by `exists` (spellings)
    listed = engine.present((t.image for t in buildable), client)
    missing: set[str] = set()
    if push or len(listed) < len({t.image for t in buildable}):
        client = client or engine.connect()
        missing = {
            t.image
            for t in buildable
            if t.image not in listed and not engine.exists(client, t.image)
        }
        if missing:
            engine.ensure_base_image(client, ctx.config.target.base_image)

    def one(target: ImageTarget) -> Outcome:
        try:
            exists = target.image not in missing
            return build_target(ctx, client, target, push=push, exists=exists)
        except ImageError as exc:
            return _outcome(target, built=False, pushed=False, seconds=0.0, error=exc)
        except Exception as exc:  # an engine hiccup: this image fails, the others go on
            error = ImageError(target.subject, f"{type(exc).__name__}: {exc}")
            return _outcome(target, built=False, pushed=False, seconds=0.0, error=error)

    workers = max(1, jobs or default_jobs())
    results: dict[int, Outcome] = {}
    # started here, on this thread, so the progress display exists before the workers report
    ctx.reporter.start("images", f"{len(targets)} image(s)", len(targets))
    try:
        if not missing and not push:  # nothing to build or push: no threads either
            for index, target in enumerate(targets):
                results[index] = one(target)
                ctx.reporter.advance("images")
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(workers, thread_name_prefix="image-build") as pool:
                for wave in _waves(targets, missing):
                    outcomes = pool.map(one, [targets[i] for i in wave])
                    for index, outcome in zip(wave, outcomes, strict=True):
                        results[index] = outcome
                        ctx.reporter.advance("images")
    finally:
        ctx.reporter.done("images")
    return [results[i] for i in range(len(targets))]


def _waves(targets: Sequence[ImageTarget], missing: set[str]) -> list[list[int]]:
    """Indexes of the targets in two waves: first one image to build per distinct
    requirements list (and every image not to build), then the other images to build.
    Images with the same list share the layers of the install step (the Dockerfile puts it
    before anything image-specific), so the second wave finds them in the engine's cache
    instead of installing the same wheels several times at once."""
    first: list[int] = []
    second: list[int] = []
    seen: set[tuple[str, ...]] = set()
    for index, target in enumerate(targets):
        if target.context is None or target.image not in missing:
            first.append(index)
        elif target.context.requirements not in seen:
            first.append(index)
            seen.add(target.context.requirements)
        else:
            second.append(index)
    return [wave for wave in (first, second) if wave]


def summary(outcome: Outcome) -> dict[str, Any]:
    document: dict[str, Any] = {
        "plugin": outcome.plugin,
        "role": outcome.role,
        "image": outcome.image,
        "built": outcome.built,
        "pushed": outcome.pushed,
        "seconds": round(outcome.seconds, 3),
    }
    if outcome.error is not None:
        document["error"] = outcome.error.render()
    return document
