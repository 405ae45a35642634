"""The rendered workloads against the runtime's contract (migrate.runtime.settings).

Every environment variable a template sets on a container of ours must be
one the runtime reads in that container's role: `service` (the plugin
Deployments), `worker` (the worker Deployments) or `orchestrator`. A
variable nothing reads is a setting that looks right and does nothing
(issue 10: `MIGRATE_QUEUE` where the runtime reads `MIGRATE_BUS`). Our
containers are those of pods labelled `app.kubernetes.io/managed-by:
migrate` with an application component (plugin, worker, orchestrator); the
Redis, Kafka and Elasticsearch pods are not ours. The runtime decides its
role from MIGRATE_ROLE (default `service`), so that is what counts here,
and it must agree with the pod's component label.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from migrate.manifests.model import Manifest

#: pod label app.kubernetes.io/component -> the runtime role its containers run
COMPONENT_ROLES = {"plugin": "service", "worker": "worker", "orchestrator": "orchestrator"}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


@dataclass(frozen=True)
class Container:
    """One container of ours: where it is rendered, its role and its environment."""

    manifest: Manifest
    name: str
    component: str
    role: str
    env: dict[str, dict[str, Any]] = field(compare=False)

    @property
    def where(self) -> str:
        return f"phase-{self.manifest.phase}/{self.manifest.filename}: container {self.name}"


def containers(manifests: Iterable[Manifest]) -> list[Container]:
    """The containers that run the migrate runtime, with the role MIGRATE_ROLE gives them."""
    default_role = _default("MIGRATE_ROLE")
    found = []
    for manifest in manifests:
        if manifest.kind not in WORKLOAD_KINDS:
            continue
        template = manifest.obj.get("spec", {}).get("template", {})
        labels = template.get("metadata", {}).get("labels", {})
        component = labels.get("app.kubernetes.io/component")
        if labels.get("app.kubernetes.io/managed-by") != "migrate":
            continue
        if component not in COMPONENT_ROLES:
            continue
        for container in template.get("spec", {}).get("containers", []):
            env = {str(e.get("name")): e for e in container.get("env", [])}
            role = str(env.get("MIGRATE_ROLE", {}).get("value") or default_role)
            found.append(
                Container(
                    manifest=manifest,
                    name=str(container.get("name")),
                    component=str(component),
                    role=role,
                    env=env,
                )
            )
    return found


def _default(name: str) -> str:
    from migrate.runtime.settings import VARIABLES

    return next(v.default for v in VARIABLES if v.name == name)


def env_errors(manifests: Iterable[Manifest]) -> list[str]:
    """What breaks the contract, one message per variable, naming file and container."""
    from migrate.runtime.settings import ALL, VARIABLES

    by_name = {v.name: v for v in VARIABLES}
    errors = []
    for container in containers(manifests):
        if container.role not in ALL:
            errors.append(
                f"{container.where}: MIGRATE_ROLE={container.role!r} is not a runtime role "
                f"({', '.join(ALL)})"
            )
            continue
        expected = COMPONENT_ROLES[container.component]
        if container.role != expected:
            errors.append(
                f"{container.where}: a {container.component} pod runs role {container.role!r}; "
                f"set MIGRATE_ROLE={expected}"
            )
        for name in container.env:
            variable = by_name.get(name)
            if variable is None:
                errors.append(
                    f"{container.where}: sets {name}, which the runtime does not read "
                    "(migrate.runtime.settings.VARIABLES)"
                )
            elif container.role not in variable.roles:
                errors.append(
                    f"{container.where}: sets {name}, which only role(s) "
                    f"{', '.join(variable.roles)} read, in role {container.role}"
                )
    return errors
