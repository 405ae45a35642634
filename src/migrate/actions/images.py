"""`images`: one container image per plugin (DESIGN 3.7) and the orchestrator's (3.9), the
same code as `migrate images`.

The plan reads facts: each plugin's context hash and whether the engine has
that tag ("build X:hash" or "up to date"). `prepare` notes whether the tag
existed before; the receipt says which tags apply created, so rollback
removes those and nothing else, even after a half-made change.

The images of a task are independent changes: `apply` builds them `--jobs` at a time
(default as `images build`), in the same two waves as `images build` (one image per
requirements list first, so the others find the install layers in the engine's cache).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from migrate.engine.change import Change, Receipt

if TYPE_CHECKING:
    from migrate.engine.context import Context
    from migrate.roadmap import Task


class ImagesParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    plugins: Annotated[
        Literal["all"] | list[str],
        Field(description="`all`, or the names of the plugins to build"),
    ] = "all"
    orchestrator: Annotated[
        bool | None,
        Field(
            description="Build the orchestrator's image too; default: with `plugins: all`, "
            "not with a list of names"
        ),
    ] = None
    push: Annotated[bool, Field(description="Push each image to target.registry")] = False


def _presence(images: list[str]) -> dict[str, bool] | None:
    """Per image, whether the engine has it (asked without the Docker SDK when the engine
    is local: `plan` never imports it then), or None when no engine answers."""
    from migrate.images import engine
    from migrate.images.errors import DockerUnavailableError

    try:
        return engine.which_exist(images)
    except DockerUnavailableError:
        return None


# `.migrate/images.json` is read, changed and rewritten whole: one writer at a time
_ledger_lock = threading.Lock()


class ImagesAction:
    kind: ClassVar[str] = "images"
    Params: ClassVar[type[BaseModel] | None] = ImagesParams

    def preflight(self, ctx: Context) -> None:
        """Before apply asks or changes anything: a Docker engine answers, and it has the
        base image (or pulls it now): a missing one fails here, not after the question."""
        from migrate.images import engine

        client = engine.connect()  # raises DockerUnavailableError saying how to set DOCKER_HOST
        engine.ensure_base_image(client, ctx.config.target.base_image)

    def plan(self, ctx: Context, task: Task) -> list[Change]:
        from migrate.actions.base import params as task_params
        from migrate.images import builder, ledger
        from migrate.images.targets import planned_targets

        params: ImagesParams = task_params(ctx, task)  # checked once, after expansion
        if params.push:
            builder.require_registry(ctx)
        names = None if params.plugins == "all" else params.plugins
        selection = builder.select(ctx, names, params.orchestrator)
        if names is None and params.orchestrator is True:  # `all` means every plugin
            selection = builder.select(ctx, None, None)
        # tags a previous plan made from the same files (no context assembled); the
        # engine is still asked about each one below
        targets = planned_targets(ctx, selection)
        presence = _presence([t.image for t in targets if t.error is None]) if targets else None
        changes = []
        for target in targets:
            data = {
                "plugin": target.plugin.name if target.plugin is not None else None,
                "role": target.role,
                "image": target.image,
                "push": params.push,
            }
            resource = target.key
            if target.error is None:  # which images share their install layers (waves)
                listed = "\n".join(target.requirements).encode()
                data["requirements"] = hashlib.sha256(listed).hexdigest()[:16]
            if target.error is not None:
                op, summary = "create", f"cannot build: {target.error.message}"
                data["error"] = target.error.render()
            elif presence is None:
                op, summary = "create", f"build {target.image} (no Docker engine to ask)"
            elif not presence[target.image]:
                op, summary = "create", f"build {target.image}"
            elif params.push and not ledger.pushed(ctx.state_dir, target.image):
                op, summary = "update", f"push {target.image}"
            else:
                op, summary = "noop", "up to date"
            if params.push and op == "create":
                summary += " and push it"
            changes.append(
                Change(
                    task=task.id,
                    action=self.kind,
                    op=op,  # type: ignore[arg-type]
                    resource=resource,
                    summary=summary,
                    data=data,
                )
            )
        return changes

    def prepare(self, ctx: Context, change: Change) -> Receipt:
        from migrate.images import engine

        image = change.data["image"]
        existed = bool(image) and engine.exists(engine.connect(), image)
        return {"plugin": change.data["plugin"], "image": image, "existed": existed}

    def apply(self, ctx: Context, change: Change) -> Receipt:
        from migrate.images import builder, engine, ledger
        from migrate.images.context import ORCHESTRATOR
        from migrate.images.errors import ImageError

        if change.data.get("role") == ORCHESTRATOR:
            target = builder.orchestrator_target(ctx)
        else:
            [target] = builder.plan_targets(ctx, [ctx.inventory.plugin(change.data["plugin"])])
        if target.error is not None:
            raise target.error
        if target.image != change.data["image"]:
            raise ImageError(
                target.subject,
                f"changed since the plan (now {target.image})",
                hint="run the same command again: it plans afresh",
            )
        client = engine.connect()
        if not engine.exists(client, target.image):
            engine.ensure_base_image(client, ctx.config.target.base_image)
        try:
            outcome = builder.build_target(ctx, client, target, push=bool(change.data["push"]))
        except ImageError as exc:
            if exc.log:
                ctx.reporter.info(exc.log)
            raise
        with _ledger_lock:
            ledger.record(
                ctx.state_dir,
                outcome.plugin,
                target.image,
                created=outcome.built,
                pushed=outcome.pushed,
                role=outcome.role,
            )
        return {"created": [target.image] if outcome.built else [], "pushed": outcome.pushed}

    def max_workers(self, ctx: Context, jobs: int | None) -> int:
        """Builds at a time: `apply --jobs`, else the default of `images build --jobs`."""
        from migrate.images import builder

        return jobs or builder.default_jobs()

    def waves(self, ctx: Context, changes: Sequence[Change]) -> list[list[Change]]:
        """First one build per requirements list, and every change that builds nothing;
        then the other builds, which find the install layers in the engine's cache
        (`images build` does the same: builder._waves)."""
        first: list[Change] = []
        second: list[Change] = []
        seen: set[str] = set()
        for change in changes:
            requirements = change.data.get("requirements")
            if change.op != "create" or not requirements or "error" in change.data:
                first.append(change)
            elif requirements not in seen:
                first.append(change)
                seen.add(requirements)
            else:
                second.append(change)
        return [wave for wave in (first, second) if wave]

    def rollback(self, ctx: Context, receipt: Receipt) -> None:
        from migrate.images import engine, ledger

        created = receipt.get("created")
        if created is None:  # apply did not finish: remove the tag if it was not there before
            created = [] if receipt.get("existed", True) else [receipt.get("image")]
        images = [image for image in created if image]
        if not images:
            return
        client = engine.connect()
        for image in images:
            engine.remove(client, image)
        ledger.forget(ctx.state_dir, set(images))
