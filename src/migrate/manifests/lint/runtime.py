"""Our own containers against what the runtime (migrate.runtime) reads and serves.

Our containers are those that run the migrate runtime: the plugin, worker and
orchestrator pods (labelled `app.kubernetes.io/managed-by: migrate` with one of
those components, see migrate.manifests.runtime_env), and any container whose
command runs `python -m migrate_runtime`. For them:
- every environment variable is one the runtime reads in the container's role
  (migrate.runtime.settings.VARIABLES, the one list);
- every path Prometheus scrapes (PodMonitor/ServiceMonitor `path`, the
  `prometheus.io/path` annotation) and every HTTP probe path is one the runtime
  serves on every role: /healthz, /readyz, /metrics (DESIGN 3.9);
- the image is pullable as named: `migrate images build` tags it
  `<target.registry or project>/<plugin>:<hash>`, and without target.registry the
  name has no registry host, so the kubelet pulls it from Docker Hub.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from migrate.manifests.lint import Finding, SetModel, Workload, iter_containers, rule, selects
from migrate.manifests.lint import error_at as _finding
from migrate.manifests.model import Manifest

RUNTIME_DOC = "DESIGN.md 3.9; migrate.runtime.host (routes /healthz, /readyz, /metrics)"
SETTINGS_DOC = "migrate.runtime.settings.VARIABLES"
IMAGE_REFERENCE = (
    "https://github.com/distribution/reference/blob/main/normalize.go "
    "(a first component without '.' or ':' and not 'localhost' is a Docker Hub path)"
)
#: the roles' own routes (host.py); probes and scrapes use only these
SERVED_PATHS = ("/healthz", "/readyz", "/metrics")
PROBE_PATHS = ("/healthz", "/readyz")
RUNTIME_MODULE = "migrate_runtime"


@dataclass(frozen=True)
class Ours:
    """A container that runs the migrate runtime, in its workload."""

    workload: Workload
    container: dict[str, Any]


def _runs_runtime(container: dict[str, Any]) -> bool:
    words = [str(w) for w in (container.get("command") or []) + (container.get("args") or [])]
    return any(w == RUNTIME_MODULE or w.startswith(RUNTIME_MODULE + ".") for w in words) or any(
        f"-m {RUNTIME_MODULE}" in w for w in words
    )


def ours(model: SetModel) -> list[Ours]:
    from migrate.manifests.runtime_env import COMPONENT_ROLES

    found = []
    for w in model.workloads:
        labelled = (
            w.labels.get("app.kubernetes.io/managed-by") == "migrate"
            and w.labels.get("app.kubernetes.io/component") in COMPONENT_ROLES
        )
        for key, container in iter_containers(w.pod):
            if (labelled and key == "containers") or _runs_runtime(container):
                found.append(Ours(w, container))
    return found


@rule("runtime-env-read", "every environment variable of our containers is read by the runtime")
def runtime_env_read(model: SetModel) -> Iterator[Finding]:
    from migrate.manifests.runtime_env import COMPONENT_ROLES
    from migrate.runtime.settings import ALL, VARIABLES

    by_name = {v.name: v for v in VARIABLES}
    default_role = by_name["MIGRATE_ROLE"].default
    for item in ours(model):
        m, container = item.workload.manifest, item.container
        name = container.get("name")
        env = {str(e.get("name")): e for e in container.get("env") or []}
        role = str((env.get("MIGRATE_ROLE") or {}).get("value") or default_role)
        if role not in ALL:
            yield _finding(
                "runtime-env-read",
                m,
                f"container {name}: MIGRATE_ROLE={role!r} is not a runtime role",
                f"set MIGRATE_ROLE to one of {', '.join(ALL)}",
                SETTINGS_DOC,
            )
            continue
        expected = COMPONENT_ROLES.get(item.workload.labels.get("app.kubernetes.io/component", ""))
        if expected and role != expected:
            yield _finding(
                "runtime-env-read",
                m,
                f"container {name}: a {item.workload.labels['app.kubernetes.io/component']} pod "
                f"runs role {role!r}",
                f"set MIGRATE_ROLE={expected}",
                SETTINGS_DOC,
            )
        for variable in env:
            known = by_name.get(variable)
            if known is None:
                yield _finding(
                    "runtime-env-read",
                    m,
                    f"container {name}: sets {variable}, which the runtime does not read: the "
                    "setting looks right and does nothing",
                    "remove it, or spell it as the runtime reads it "
                    f"({', '.join(sorted(by_name)[:6])}...; see docs/runtime.md)",
                    SETTINGS_DOC,
                )
            elif role not in known.roles:
                yield _finding(
                    "runtime-env-read",
                    m,
                    f"container {name}: sets {variable}, which only role(s) "
                    f"{', '.join(known.roles)} read, in role {role}",
                    "remove it from this container",
                    SETTINGS_DOC,
                )


def _paths_of_monitors(model: SetModel) -> Iterator[tuple[Manifest, str, list[Workload]]]:
    """(monitor, scraped path, the workloads whose pods it scrapes)."""
    for m in model.of_kind("PodMonitor"):
        spec = m.obj.get("spec") or {}
        selected = model.pods(m.namespace, spec.get("selector"))
        for endpoint in spec.get("podMetricsEndpoints") or []:
            yield m, str(endpoint.get("path", "/metrics")), selected
    for m in model.of_kind("ServiceMonitor"):
        spec = m.obj.get("spec") or {}
        pods: list[Workload] = []
        for service in model.of_kind("Service"):
            labels = dict(service.obj.get("metadata", {}).get("labels") or {})
            selector = (service.obj.get("spec") or {}).get("selector")
            if (
                service.namespace == m.namespace
                and selector
                and selects(spec.get("selector"), labels)
            ):
                pods += model.pods(service.namespace, selector)
        for endpoint in spec.get("endpoints") or []:
            yield m, str(endpoint.get("path", "/metrics")), pods


@rule("runtime-path-served", "every scraped or probed path of our pods is one the runtime serves")
def runtime_path_served(model: SetModel) -> Iterator[Finding]:
    mine = ours(model)
    workloads = {id(item.workload) for item in mine}
    for m, path, pods in _paths_of_monitors(model):
        if path not in SERVED_PATHS and any(id(w) in workloads for w in pods):
            yield _finding(
                "runtime-path-served",
                m,
                f"scrapes {path} of our pods, which the runtime does not serve (it serves "
                f"{', '.join(SERVED_PATHS)})",
                "scrape /metrics",
                RUNTIME_DOC,
            )
    seen: set[int] = set()
    for item in mine:
        w = item.workload
        scraped = w.annotations.get("prometheus.io/path")
        if scraped is not None and scraped not in SERVED_PATHS and id(w) not in seen:
            seen.add(id(w))
            yield _finding(
                "runtime-path-served",
                w.manifest,
                f"pod annotation prometheus.io/path={scraped} names a path the runtime "
                "does not serve",
                "set prometheus.io/path: /metrics",
                RUNTIME_DOC,
            )
        for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
            get = (item.container.get(kind) or {}).get("httpGet")
            if get is None:
                continue
            path = str(get.get("path", "/"))
            if path not in PROBE_PATHS:
                yield _finding(
                    "runtime-path-served",
                    w.manifest,
                    f"container {item.container.get('name')}: {kind} GETs {path}, which the "
                    f"runtime does not serve (probes: {', '.join(PROBE_PATHS)})",
                    "probe /healthz (liveness, startup) and /readyz (readiness)",
                    RUNTIME_DOC,
                )


def registry_host(image: str) -> str | None:
    """The registry host of an image reference, or None when it would be Docker Hub's."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


@rule("image-pullable", "our images name the registry they are pushed to")
def image_pullable(model: SetModel) -> Iterator[Finding]:
    """One warning per phase: without target.registry the images can only run where
    they were built (`migrate dev up`), so a cluster needs them pushed somewhere first.
    A warning, not an error: planning and rendering a project before it has a registry
    is the normal start (issue 12, item 7: "say clearly at plan time")."""
    unpulled: dict[int, tuple[Manifest, list[str]]] = {}
    for item in ours(model):
        image = str(item.container.get("image", ""))
        if not image or registry_host(image) is not None:
            continue
        first, images = unpulled.setdefault(
            item.workload.manifest.phase, (item.workload.manifest, [])
        )
        if image not in images:
            images.append(image)
    for phase in sorted(unpulled):
        first, images = unpulled[phase]
        finding = _finding(
            "image-pullable",
            first,
            f"{len(images)} image(s) of phase {phase} name no registry host (e.g. {images[0]}), "
            "so a cluster's kubelet would pull them from docker.io, where "
            "`migrate images build` never pushed them",
            "set target.registry in migrate.yaml and run `migrate images build --push` before "
            "applying to a cluster",
            IMAGE_REFERENCE,
        )
        yield replace(finding, severity="warning")
