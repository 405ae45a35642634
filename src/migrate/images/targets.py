"""Which images a project has and what they are called: one per plugin, and the
orchestrator's (DESIGN 3.7, 3.9).

Pure: assembling a context reads files; nothing here asks the engine or the
network, so `plan`, `render` and `images list` name exactly the tags that
`images build` makes, without building.

Names: a plugin's image is `<registry or project>/<plugin>:<hash>`; the
orchestrator's is `<registry or project>/<project>-orchestrator:<hash>`, the
name of its Kubernetes Deployment, so a plugin called `orchestrator` keeps
its own repository. Only a plugin whose name makes `<project>-orchestrator`
itself would share it: then the orchestrator image is refused, saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from migrate.images import context as contexts
from migrate.images.context import ORCHESTRATOR, SERVICE
from migrate.images.errors import ORCHESTRATOR_SUBJECT, ImageError, PluginImageError
from migrate.names import image_repository, image_repository_name

if TYPE_CHECKING:
    from migrate.engine.context import Context
    from migrate.images.context import BuildContext
    from migrate.inventory import Plugin

ORCHESTRATOR_KEY = "orchestrator-image"  # reporter key and plan resource: no plugin's `image:X`


def repository_prefix(ctx: Context) -> str:
    """`target.registry` when set, else the project name (DESIGN 3.7)."""
    return ctx.config.target.registry or ctx.config.project


def reference(ctx: Context, plugin: str, short_hash: str) -> str:
    """`<registry or project>/<plugin>:<12 hex of the context SHA-256>`."""
    return f"{image_repository(repository_prefix(ctx), plugin)}:{short_hash}"


def orchestrator_repository(ctx: Context) -> str:
    """`<registry or project>/<project>-orchestrator`."""
    return image_repository(repository_prefix(ctx), f"{ctx.config.project}-{ORCHESTRATOR}")


def orchestrator_reference(ctx: Context, short_hash: str) -> str:
    return f"{orchestrator_repository(ctx)}:{short_hash}"


def orchestrator_conflict(ctx: Context) -> ImageError | None:
    """The error when a plugin's repository is the orchestrator's, else None."""
    wanted = image_repository_name(f"{ctx.config.project}-{ORCHESTRATOR}")
    for plugin in ctx.inventory.plugins:
        if image_repository_name(plugin.name) == wanted:
            return ImageError(
                ORCHESTRATOR_SUBJECT,
                f"its repository {orchestrator_repository(ctx)} would also be that of "
                f"plugin {plugin.name!r} ({plugin.path})",
                hint="rename that plugin's directory, or the project (`project` in migrate.yaml)",
            )
    return None


@dataclass(frozen=True)
class ImageTarget:
    """One image as planned: its context and tag, or why it cannot be built."""

    plugin: Plugin | None  # None: the orchestrator
    context: BuildContext | None  # None also for a tag a previous plan kept (`planned`)
    image: str  # the reference; "" when the context could not be assembled
    error: ImageError | None = None
    #: the context's requirements when `context` is None because the tag was kept
    kept_requirements: tuple[str, ...] | None = None

    @property
    def requirements(self) -> tuple[str, ...]:
        """What the image's wheelhouse is resolved from."""
        if self.context is not None:
            return self.context.requirements
        return self.kept_requirements or ()

    @property
    def role(self) -> str:
        """`service` for a plugin's image (it runs as a worker too), or `orchestrator`."""
        return SERVICE if self.plugin is not None else ORCHESTRATOR

    @property
    def name(self) -> str:
        """The plugin's name, or `orchestrator`: what a person reads in a table."""
        return self.plugin.name if self.plugin is not None else ORCHESTRATOR

    @property
    def subject(self) -> str:
        """How errors name it: `plugin X` or `the orchestrator image`."""
        return f"plugin {self.plugin.name}" if self.plugin is not None else ORCHESTRATOR_SUBJECT

    @property
    def key(self) -> str:
        """Reporter key and plan resource: `image:<plugin>` or `orchestrator-image`."""
        return f"image:{self.plugin.name}" if self.plugin is not None else ORCHESTRATOR_KEY

    @property
    def log_name(self) -> str:
        """File name (no suffix) of its last build log: its repository's last component."""
        if self.plugin is not None:
            return image_repository_name(self.plugin.name)
        return self.image.rsplit(":", 1)[0].rsplit("/", 1)[-1] or ORCHESTRATOR_KEY


@dataclass(frozen=True)
class Selection:
    """What a command works on: some plugins, and the orchestrator or not."""

    plugins: list[Plugin]
    orchestrator: bool
    all_plugins: bool = False  # no plugin named: every plugin, present or recorded

    def includes(self, plugin: str | None) -> bool:
        """Whether the image of `plugin` (None: the orchestrator) is selected."""
        if plugin is None:
            return self.orchestrator
        return self.all_plugins or any(p.name == plugin for p in self.plugins)


def select_plugins(ctx: Context, names: Sequence[str] | None) -> list[Plugin]:
    """The plugins to work on: all, or the named ones (an unknown name is an error)."""
    inventory = ctx.inventory
    if not names:
        return list(inventory.plugins)
    return [inventory.plugin(name) for name in dict.fromkeys(names)]


def select(ctx: Context, plugins: Sequence[str] | None, orchestrator: bool | None) -> Selection:
    """`--plugin` and `--orchestrator` select; with neither, every image.

    - nothing given: every plugin and the orchestrator;
    - `plugins` named: those plugins, and the orchestrator only when `orchestrator` is True;
    - `orchestrator` True and no plugin named: the orchestrator alone;
    - `orchestrator` False: never the orchestrator (every plugin unless some are named).
    """
    if plugins:
        return Selection(select_plugins(ctx, plugins), orchestrator is True)
    if orchestrator is True:
        return Selection([], True)
    return Selection(select_plugins(ctx, None), orchestrator is None, all_plugins=True)


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


def orchestrator_target(ctx: Context) -> ImageTarget:
    """The orchestrator's context and tag; an error when its name is a plugin's."""
    built = contexts.assemble_orchestrator(ctx)
    image = orchestrator_reference(ctx, built.short_hash)
    conflict = orchestrator_conflict(ctx)
    if conflict is not None:
        return ImageTarget(None, None, image, conflict)
    return ImageTarget(None, built, image)


def selected_targets(ctx: Context, selection: Selection) -> list[ImageTarget]:
    """The selected plugins' targets, then the orchestrator's when selected."""
    targets = plan_targets(ctx, selection.plugins)
    if selection.orchestrator:
        targets.append(orchestrator_target(ctx))
    return targets


def planned_targets(ctx: Context, selection: Selection) -> list[ImageTarget]:
    """`selected_targets` for a plan: each tag a previous plan made under the same render
    memo key (migrate.manifests.render_memo: the status of every file of the project, the
    application and migrate, the config, the environment) is taken from it, with no
    context assembled; any other is assembled, and kept for the next plan. `apply`
    assembles each context again (`plan_targets`) and refuses a tag that differs."""
    from migrate.manifests.render_memo import render_memo

    memo = render_memo(ctx)
    targets = []
    for plugin in selection.plugins:
        key = f"image|{plugin.name}|{plugin.path}|{plugin.manifest!r}"
        kept = memo.value(key)
        if _is_kept(kept):
            targets.append(
                ImageTarget(plugin, None, kept["image"], kept_requirements=tuple(kept["req"]))
            )
            continue
        [target] = plan_targets(ctx, [plugin])
        if target.context is not None:
            memo.keep(key, {"image": target.image, "req": list(target.context.requirements)})
        targets.append(target)
    if selection.orchestrator:
        kept = memo.value("image|orchestrator")
        if _is_kept(kept):
            image, conflict = kept["image"], orchestrator_conflict(ctx)
            targets.append(ImageTarget(None, None, image, conflict, tuple(kept["req"])))
        else:
            built = contexts.assemble_orchestrator(ctx)
            memo.keep(
                "image|orchestrator",
                {
                    "image": orchestrator_reference(ctx, built.short_hash),
                    "req": list(built.requirements),
                },
            )
            targets.append(orchestrator_target(ctx))
    return targets


def _is_kept(value: object) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("image"), str)
        and bool(value["image"])
        and isinstance(value.get("req"), list)
        and all(isinstance(r, str) for r in value["req"])
    )
