"""Which image a workload runs: exactly the tags `migrate images build` makes.

DESIGN 3.7 tags an image `<registry or project>/<plugin>:<hash>`, the hash
being the first 12 hex digits of the SHA-256 of the build context; the
orchestrator's image is `<registry or project>/<project>-orchestrator:<hash>`
(DESIGN 3.9). The manifests compute the same references from the same build
contexts (`migrate.images.targets`, pure: it reads files, never asks Docker),
so `render` and `plan` work before any build. Should a plugin's context not
assemble (a plugin without its entrypoint), its tag falls back to a hash of
the plugin directory: the build says why it cannot build it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from migrate.inventory import Plugin
from migrate.names import image_repository

if TYPE_CHECKING:
    from migrate.engine.context import Context

_SKIP = {"__pycache__", ".git", ".venv", "node_modules"}


def plugin_source_hash(directory: Path) -> str:
    """First 12 hex digits of the SHA-256 of the plugin's files (paths and contents)."""
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if any(part in _SKIP or part.startswith(".") for part in relative.parts):
            continue
        if path.is_file() and not path.name.endswith((".pyc", ".pyo")):
            digest.update(relative.as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def image_prefix(registry: str | None, project: str) -> str:
    return registry.rstrip("/") if registry else project


def image_tag(ctx: Context, plugin: Plugin) -> str:
    """The 12-hex tag `migrate images build` gives the plugin's image."""
    from migrate.images.context import assemble

    try:
        return assemble(ctx, plugin).short_hash
    except Exception:  # the build context cannot be assembled: images will say why
        return plugin_source_hash(plugin.path)


def plugin_image(ctx: Context, plugin: Plugin) -> str:
    """`<registry or project>/<image name>:<tag>`, as `migrate images build` tags it."""
    from migrate.images.targets import repository_prefix

    return f"{image_repository(repository_prefix(ctx), plugin.name)}:{image_tag(ctx, plugin)}"


def orchestrator_image(ctx: Context) -> str:
    """`<registry or project>/<project>-orchestrator:<tag>`, as `migrate images build` tags it.

    Raises the images' `ImageError` when a plugin's repository would be the orchestrator's.
    """
    from migrate.images.targets import orchestrator_target

    target = orchestrator_target(ctx)
    if target.error is not None:
        raise target.error
    return target.image
