"""What rendering produces: Kubernetes objects and Helm releases, per phase."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import yaml


def dump(document: Any) -> str:
    """YAML with sorted keys and block style: byte-stable across runs, small diffs."""
    return yaml.safe_dump(document, sort_keys=True, default_flow_style=False, width=100)


@dataclass(frozen=True)
class Manifest:
    """One Kubernetes object, from the task and component that rendered it."""

    phase: int
    task: str
    component: str
    template: str
    obj: dict[str, Any] = field(compare=False, hash=False)
    app_namespace: str = ""

    @property
    def api_version(self) -> str:
        return str(self.obj.get("apiVersion", ""))

    @property
    def group(self) -> str:
        """The API group: "" for the core group (`v1`)."""
        return self.api_version.rpartition("/")[0]

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def name(self) -> str:
        return str(self.obj.get("metadata", {}).get("name", ""))

    @property
    def namespace(self) -> str | None:
        namespace = self.obj.get("metadata", {}).get("namespace")
        return str(namespace) if namespace else None

    @property
    def ref(self) -> str:
        """`Kind namespace/name`: how messages name the object."""
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"

    @property
    def filename(self) -> str:
        """`<kind>-<name>.yaml`, with the namespace when it is not the application's."""
        parts = [self.kind.lower()]
        if self.namespace and self.namespace != self.app_namespace:
            parts.append(self.namespace)
        parts.append(self.name)
        return "-".join(parts) + ".yaml"

    @cached_property
    def text(self) -> str:
        return dump(self.obj)


@dataclass(frozen=True)
class HelmRelease:
    """A Helm chart Pulumi installs (`helm.v3.Release`), pinned to one chart version."""

    name: str
    chart: str
    version: str
    repository: str
    namespace: str
    component: str
    values: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    phase: int = 0
    task: str = ""

    @property
    def filename(self) -> str:
        return f"helm/{self.name}.yaml"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "chart": self.chart,
            "version": self.version,
            "repository": self.repository,
            "namespace": self.namespace,
            "values": self.values,
        }

    @cached_property
    def text(self) -> str:
        header = (
            "# A Helm release that `migrate infra up` installs through Pulumi; with kubectl or\n"
            f"# Argo CD, install it as: helm upgrade --install {self.name} {self.chart} \\\n"
            f"#   --repo {self.repository} --version {self.version} "
            f"--namespace {self.namespace} --create-namespace -f <values below>\n"
        )
        return header + dump(self.to_dict())


@dataclass(frozen=True)
class TaskManifests:
    """What one `manifests` or `infra` task renders."""

    phase: int
    task: str
    components: tuple[str, ...]
    manifests: tuple[Manifest, ...]
    releases: tuple[HelmRelease, ...]

    def to_record(self) -> dict[str, Any]:
        """The JSON form kept as the last applied set (no secrets: none are rendered)."""
        return {
            "phase": self.phase,
            "task": self.task,
            "components": list(self.components),
            "objects": [m.obj for m in self.manifests],
            "files": [m.filename for m in self.manifests],
            "releases": [r.to_dict() | {"component": r.component} for r in self.releases],
        }


@dataclass(frozen=True)
class PhaseManifests:
    phase: int
    tasks: tuple[TaskManifests, ...]

    @property
    def manifests(self) -> tuple[Manifest, ...]:
        return tuple(m for t in self.tasks for m in t.manifests)

    @property
    def releases(self) -> tuple[HelmRelease, ...]:
        return tuple(r for t in self.tasks for r in t.releases)
