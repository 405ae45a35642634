"""Render the roadmap's `manifests` and `infra` tasks into Kubernetes objects.

Each component's templates (templates/k8s, the project's own templates/ k8s
first) render to a YAML stream; every document becomes one `Manifest`, which
is written to its own file with sorted keys, so two renders of the same
input are byte-identical and a changed input gives a small diff.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrate.errors import UserError
from migrate.manifests import facts as decide
from migrate.manifests import tracks as tracks_state
from migrate.manifests.components import (
    TEMPLATES,
    Options,
    roadmap_options,
    task_components,
)

# re-exported: infra/stack.py names the database Secret with them
from migrate.manifests.facts import DATABASE_SECRET_KEY as DATABASE_SECRET_KEY
from migrate.manifests.facts import Names as Names
from migrate.manifests.helm import ISTIO_TRACING_PROVIDER, releases_for
from migrate.manifests.images import orchestrator_image, plugin_image
from migrate.manifests.model import HelmRelease, Manifest, PhaseManifests, TaskManifests
from migrate.manifests.naming import plugin_label
from migrate.manifests.sizing import resource_quota, sidecar_annotations, template_sizes
from migrate.roadmap import RENDERED_KINDS
from migrate.runtime.bus.base import SETTLED

if TYPE_CHECKING:
    from migrate.engine.context import Context
    from migrate.roadmap import Task

RENDERED_ACTIONS = RENDERED_KINDS  # the kinds that render objects (one list: roadmap.py)
#: the components whose containers use the bus (MIGRATE_BUS): a Kafka bus needs `kafka`
BUS_CLIENTS = ("orchestrator", "workers")
#: dead letters of `<type>` go to topic `<type>.dlq` (DESIGN 3.9)
DEAD_LETTER_SUFFIX = ".dlq"


class ManifestError(UserError):
    """A template renders something that is not a valid Kubernetes object."""


class Renderer:
    """Renders tasks of one project; reads facts (inventory, tracks), changes nothing."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.names = Names(ctx.config.project, ctx.config.target.namespace)

    @cached_property
    def options(self) -> Options:
        options = roadmap_options(self.ctx.roadmap, self._params)
        # the workers and the orchestrator are the bus's clients (facts.bus_env): either
        # one rendered on a Kafka bus with no Kafka cluster would point at nothing
        clients = [c for c in BUS_CLIENTS if options.has(c)]
        if clients and options.queue == "kafka" and not options.has("kafka"):
            named = " and ".join(f"`{c}`" for c in clients)
            raise ManifestError(
                f"the bus is kafka (`queue: kafka`, the default), which the rendered {named} "
                "need, but no task of the roadmap renders the Kafka cluster (component `kafka`)",
                hint="add `kafka` to a manifests task's components (the default roadmap's "
                "event-driven-communication), or set `queue: redis` on the task that renders "
                "`workers` (the orchestrator uses the workers' bus; with no workers, on the "
                "orchestrator's task)",
            )
        self._check_ingress(options)
        return options

    def _check_ingress(self, options: Options) -> None:
        """A host is served over TLS: a named Secret, or one cert-manager issues. (No host
        at all is the whole-set check `ingress-tls-host`'s warning.)"""
        ingress = self.ctx.config.target.ingress
        if not options.has("ingress-nginx"):
            return
        if ingress.host and not (ingress.tls_secret or ingress.cluster_issuer):
            raise ManifestError(
                f"migrate.yaml: target.ingress.host is {ingress.host!r} but no certificate "
                "is named for it",
                hint="set target.ingress.cluster_issuer (a cert-manager ClusterIssuer) or "
                "target.ingress.tls_secret (a kubernetes.io/tls Secret in the namespace)",
            )

    @cached_property
    def quota(self) -> dict[str, Any]:
        """The ResourceQuota's `spec.hard`, summed from what the roadmap renders."""
        ingress = self.ctx.config.target.ingress
        gateway = self.options.has("ingress-nginx") and ingress.controller == "gateway"
        return resource_quota(self.options, self._plugin_facts, gateway_in_namespace=gateway)

    @cached_property
    def current_tracks(self) -> dict[str, dict[str, Any]]:
        return tracks_state.load(self.ctx.state_dir)

    @cached_property
    def tracks(self) -> dict[str, tracks_state.Track]:
        """Per plugin: the tracks `apply` would leave (render shows that state)."""
        return {
            plugin["name"]: tracks_state.next_track(
                self.current_tracks.get(plugin["name"]), plugin["image"]
            )
            for plugin in self._plugin_facts
        }

    @cached_property
    def _plugin_facts(self) -> list[dict[str, Any]]:
        plugins = self.ctx.inventory.plugins
        settings = self.ctx.config.plugins
        unknown = sorted(set(settings) - {p.name for p in plugins})
        if unknown:
            raise ManifestError(
                f"migrate.yaml: plugins.{unknown[0]} names no plugin of the application "
                f"(its plugins: {', '.join(sorted(p.name for p in plugins)) or 'none'})",
                hint="spell the key as the plugin's name in its plugin.yaml, or remove it",
            )
        facts = []
        for plugin in plugins:
            events = plugin.manifest.events
            setting = settings.get(plugin.name)
            facts.append(
                {
                    "name": plugin.name,
                    "label": plugin_label(plugin.name),
                    "image": plugin_image(self.ctx, plugin),
                    "version": plugin.version or "",
                    "description": plugin.manifest.description,
                    "entrypoint": plugin.entrypoint,
                    "consumes": list(events.consumes),
                    "produces": list(events.produces),
                    "cache_ttl_s": setting.cache_ttl_s if setting else 0,
                }
            )
        return facts

    @cached_property
    def facts(self) -> decide.Facts:
        """The decisions behind the objects (manifests/facts.py), made once per render."""
        target = self.ctx.config.target
        settings = decide.Settings(
            otlp_endpoint=target.monitoring.otlp_endpoint,
            schema=target.db_schema,
            controller=target.ingress.controller,
            host=target.ingress.host,
            class_name=target.ingress.class_name,
            tls_secret=target.ingress.tls_secret,
            cluster_issuer=target.ingress.cluster_issuer,
        )
        plugins = [
            decide.PluginInput(
                name=fact["name"],
                image=fact["image"],
                version=fact["version"],
                description=fact["description"],
                entrypoint=fact["entrypoint"],
                consumes=tuple(fact["consumes"]),
                produces=tuple(fact["produces"]),
                cache_ttl_s=fact["cache_ttl_s"],
                track_images=self.tracks[fact["name"]].images,
                active_track=self.tracks[fact["name"]].active,
            )
            for fact in self._plugin_facts
        ]
        return decide.build(
            self.options,
            self.names,
            settings,
            plugins,
            event_graph=self.event_graph,
            orchestrator_image=self._orchestrator_image(),
        )

    @property
    def plugins(self) -> list[decide.Plugin]:
        """What templates see of each plugin: names, image, events, tracks, decisions."""
        return self.facts.plugins

    @cached_property
    def event_types(self) -> list[str]:
        """The event types on the bus: the task's `topics`, else every plugin.yaml entry."""
        if self.options.topics is not None:
            return sorted(set(self.options.topics))
        return sorted({e for p in self._plugin_facts for e in p["consumes"] + p["produces"]})

    @cached_property
    def topics(self) -> list[dict[str, str]]:
        """Kafka topics (DESIGN 3.9): one per event type, its `<type>.dlq`, and the workers'
        settled notices (`migrate.settled`) that tell the orchestrator a run is done."""
        from migrate.manifests.naming import topic_resource_name

        names = sorted(
            {*self.event_types, *(f"{t}{DEAD_LETTER_SUFFIX}" for t in self.event_types), SETTLED}
        )
        return [{"topic": t, "name": topic_resource_name(t)} for t in names]

    @cached_property
    def event_graph(self) -> str:
        """MIGRATE_EVENT_GRAPH: JSON {plugin: {"consumes": [..], "produces": [..]}}."""
        from migrate.inventory import event_graph

        graph = event_graph(self.ctx.inventory.plugins)
        return json.dumps(graph, sort_keys=True, separators=(",", ":"))

    def _orchestrator_image(self) -> str:
        """The roadmap's `image`, else the tag `migrate images build` gives the orchestrator."""
        if self.options.orchestrator_image:
            return self.options.orchestrator_image
        return orchestrator_image(self.ctx)

    def _params(self, task: Task) -> Any:
        """The task's `with:`, expanded and validated once for the context."""
        from migrate.actions.registry import task_params

        return task_params(self.ctx, task)

    def render_task(self, phase: int, task: Task) -> TaskManifests:
        params = self._params(task)
        components = task_components(params)
        if task.action == "infra":
            wanted = params.namespace
            if wanted and wanted != self.names.namespace:
                raise ManifestError(
                    f"task {task.id}: namespace {wanted!r} differs from target.namespace "
                    f"{self.names.namespace!r}",
                    hint="drop `namespace` from the task's `with:` or make the two agree",
                )
        templates: list[str] = []
        releases: list[HelmRelease] = []
        variables = self.ctx.variables
        for component in components:
            for template in TEMPLATES[component]:
                if template not in templates:
                    templates.append(template)
            for release in releases_for(component, self.options, variables):
                releases.append(
                    HelmRelease(**{**release.__dict__, "phase": phase, "task": task.id})
                )
        manifests: list[Manifest] = []
        for template in templates:
            text = self.ctx.render(
                template,
                task=task,
                components=set(components),
                options=self.options,
                names=self.names.to_dict(),
                **self.facts.variables(),
                topics=self.topics,
                event_graph=self.event_graph,
                orchestrator_image=self._orchestrator_image(),
                quota=self.quota,
                sizes=template_sizes(),
                sidecar_annotations=sidecar_annotations() if self.options.has("istio") else {},
                tracing_provider=ISTIO_TRACING_PROVIDER,
            )
            component = next(c for c in components if template in TEMPLATES[c])
            manifests.extend(self._parse(text, template, phase, task.id, component))
        return TaskManifests(
            phase=phase,
            task=task.id,
            components=components,
            manifests=tuple(manifests),
            releases=tuple(releases),
        )

    def _parse(
        self, text: str, template: str, phase: int, task: str, component: str
    ) -> Iterable[Manifest]:
        import yaml

        try:
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            documents = list(yaml.load_all(text, Loader=loader))
        except yaml.YAMLError as exc:
            raise ManifestError(
                f"template {template!r} did not render valid YAML: {exc}",
                hint="fix the template (the project's templates/ overrides the packaged one)",
            ) from None
        for index, document in enumerate(documents, start=1):
            if document is None:
                continue
            metadata = document.get("metadata") if isinstance(document, dict) else None
            if (
                not isinstance(document, dict)
                or not document.get("apiVersion")
                or not document.get("kind")
                or not isinstance(metadata, dict)
                or not metadata.get("name")
            ):
                raise ManifestError(
                    f"template {template!r}, document {index}: not a Kubernetes object "
                    "(apiVersion, kind and metadata.name are required)",
                )
            yield Manifest(
                phase=phase,
                task=task,
                component=component,
                template=template,
                obj=document,
                app_namespace=self.names.namespace,
            )

    def render(
        self, phases: list[int] | None = None, tasks: set[str] | None = None
    ) -> list[PhaseManifests]:
        """Render the given phases (default all), or only the `tasks` among them."""
        result = []
        selected = (
            [self.ctx.roadmap.phase(n) for n in phases] if phases else self.ctx.roadmap.phases
        )
        for phase in selected:
            rendered = tuple(
                self.render_task(phase.id, task)
                for task in phase.tasks
                if task.action in RENDERED_ACTIONS and (tasks is None or task.id in tasks)
            )
            result.append(PhaseManifests(phase=phase.id, tasks=rendered))
        _check_unique([m for p in result for m in p.manifests])
        return result


def _check_unique(manifests: list[Manifest]) -> None:
    seen: dict[tuple[str, str, str | None, str], Manifest] = {}
    files: dict[tuple[int, str], Manifest] = {}
    for manifest in manifests:
        key = (manifest.group, manifest.kind, manifest.namespace, manifest.name)
        other = seen.get(key) or files.get((manifest.phase, manifest.filename))
        if other is not None:
            raise ManifestError(
                f"{manifest.ref} is rendered twice: by task {other.task} ({other.template}) "
                f"and by task {manifest.task} ({manifest.template})",
                hint="one object belongs to one task; remove the component from one of them",
            )
        seen[key] = manifest
        files[(manifest.phase, manifest.filename)] = manifest


def render_project(
    ctx: Context, phases: list[int] | None = None, tasks: set[str] | None = None
) -> list[PhaseManifests]:
    return Renderer(ctx).render(phases, tasks)


def write(phases: list[PhaseManifests], out_dir: Path) -> list[Path]:
    """Write `out_dir/phase-N/<file>` per object and `helm/<release>.yaml` per release.

    A phase directory is owned by render: YAML files left from an earlier
    render that are no longer produced are removed, so the directory is
    exactly what `kubectl apply -f` or Argo CD should see.
    """
    written: list[Path] = []
    for phase in phases:
        directory = out_dir / f"phase-{phase.phase}"
        wanted = {m.filename: m.text for m in phase.manifests}
        wanted.update({r.filename: r.text for r in phase.releases})
        for stale in [*directory.glob("*.yaml"), *directory.glob("helm/*.yaml")]:
            if stale.relative_to(directory).as_posix() not in wanted:
                stale.unlink()
        for filename, text in sorted(wanted.items()):
            path = directory / filename
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
            written.append(path)
    return written
