"""Where the behaviour checks reach the migrated system: the roadmap variables
`{{ target.orchestrator_url }}` and `{{ target.plugin_url.NAME }}`.

In order: what migrate.yaml says (`target.orchestrator_url`), the running
`migrate dev up` environment (`.migrate/dev.json`), else the in-cluster
Service (`http://<name>.<namespace>.svc`, port 80 as the manifests render it),
which answers only where cluster DNS does (verify running in a pod).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrate.errors import UserError

if TYPE_CHECKING:
    from migrate.engine.context import Context


def dev_state(project_dir: Path) -> dict[str, Any] | None:
    """The running `migrate dev up` environment (`.migrate/dev.json`), or None."""
    from migrate.dev.state import load

    return load(project_dir)


def orchestrator_url(ctx: Context) -> str:
    target = ctx.config.target
    if target.orchestrator_url:
        return target.orchestrator_url.rstrip("/")
    state = dev_state(ctx.project_dir)
    if state and isinstance(state.get("orchestrator"), str) and state["orchestrator"]:
        return str(state["orchestrator"]).rstrip("/")
    return f"http://{ctx.config.project}-orchestrator.{target.namespace}.svc"


def plugin_url(ctx: Context, plugin: str) -> str:
    """The base URL of the plugin's service (`POST /invoke`, `GET /metrics`)."""
    for container in (dev_state(ctx.project_dir) or {}).get("containers") or []:
        if (
            isinstance(container, dict)
            and container.get("role") == "service"
            and container.get("plugin") == plugin
            and isinstance(container.get("url"), str)
        ):
            return str(container["url"]).rstrip("/")
    from migrate.manifests.naming import plugin_label

    return f"http://{plugin_label(plugin)}.{ctx.config.target.namespace}.svc"


class PluginUrls(Mapping[str, str]):
    """`{{ target.plugin_url.summarizer }}` / `{{ target.plugin_url["Report-Writer"] }}`:
    looked up when used, so a roadmap that does not use it never reads the application."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def _names(self) -> list[str]:
        return [plugin.name for plugin in self._ctx.inventory.plugins]

    def __getitem__(self, plugin: str) -> str:
        names = self._names()
        if plugin not in names:
            raise UserError(
                f"target.plugin_url: no plugin {plugin!r} in the application",
                hint=f"plugins: {', '.join(names) or 'none'}",
            )
        return plugin_url(self._ctx, plugin)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())
