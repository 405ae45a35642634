"""Which image a plugin's workloads run.

DESIGN 3.7 tags an image `<registry or project>/<plugin>:<hash>`, the hash
being the first 12 hex digits of the SHA-256 of the build context. The
manifests use that same tag, computed without Docker from the build context
`migrate.images` assembles (pure: it reads files), so `render` and `plan`
work before any build. Should the context not assemble (a plugin without
its entrypoint), the tag falls back to a hash of the plugin directory.
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
    try:
        from migrate.images.context import assemble
    except ImportError:  # a build of migrate without the images package
        return plugin_source_hash(plugin.path)
    try:
        return str(assemble(ctx, plugin).short_hash)
    except Exception:  # the build context cannot be assembled: images will say why
        return plugin_source_hash(plugin.path)


def plugin_image(ctx: Context, plugin: Plugin) -> str:
    """`<registry or project>/<image name>:<tag>`, as `migrate images build` tags it."""
    target = ctx.config.target
    repository = image_repository(image_prefix(target.registry, ctx.config.project), plugin.name)
    return f"{repository}:{image_tag(ctx, plugin)}"
