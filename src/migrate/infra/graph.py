"""The order in which a phase's stack creates its resources, as data.

Pulumi creates resources in parallel unless one `depends_on` another, and a
Helm release with `--wait` blocks until its pods are ready. So the order is
not a detail: an edge too many deadlocks a phase (fluent-bit waits for the
Secret ECK makes from the Elasticsearch resource; if that resource also waited
for fluent-bit, neither would come up), an edge too few races (istiod before
istio-base's CRDs). `dependency_graph` computes the edges from the rendered
objects and releases by three rules, each a table below:

- a custom resource depends on the release that serves its API group;
- a release that reads a resource's output depends on that resource;
- the operators' own order (istio-base -> istio-cni -> istiod -> whatever
  gets a sidecar).

Plus: a namespaced object or release depends on the Namespace it lives in
when the phase declares it. Edges to releases or objects of an earlier phase
are dropped: that phase's stack is up before this one starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from migrate.errors import MigrateError

#: API group -> the release (by name) whose chart installs its CRDs and controller
GROUP_RELEASES: dict[str, str] = {
    "monitoring.coreos.com": "kube-prometheus-stack",
    "elasticsearch.k8s.elastic.co": "eck-operator",
    "kibana.k8s.elastic.co": "eck-operator",
    "networking.istio.io": "istiod",
    "security.istio.io": "istiod",
    "kafka.strimzi.io": "strimzi",
    "keda.sh": "keda",
}

#: release -> releases it must follow when both are in the phase
RELEASE_ORDER: dict[str, tuple[str, ...]] = {
    "istio-cni": ("istio-base",),
    "istiod": ("istio-base", "istio-cni"),
    # pods that get a sidecar need the injection webhook (istiod) first
    "ingress-nginx": ("istiod",),
    "keda": ("istiod",),
}

#: Secrets an operator makes from a custom resource: (kind, pattern of the Secret's name)
#: -> the resource's name; a release whose values read such a Secret waits for the resource
SECRET_PRODUCERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Elasticsearch", re.compile(r"^(?P<name>.+)-es-elastic-user$")),
    ("Elasticsearch", re.compile(r"^(?P<name>.+)-es-http-certs-public$")),
    ("Kafka", re.compile(r"^(?P<name>.+)-cluster-ca-cert$")),
)

#: workload kinds whose pods get a sidecar in a namespace labelled istio-injection=enabled
INJECTED_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job"})

DATABASE_SECRET_NODE = "secret:database"


class CycleError(MigrateError):
    """The dependency graph of a phase has a cycle: no order can create it."""


def object_node(obj: dict[str, Any]) -> str:
    """`object:<Kind> <namespace>/<name>` (or without the namespace)."""
    metadata = obj.get("metadata", {})
    namespace = metadata.get("namespace")
    where = f"{namespace}/" if namespace else ""
    return f"object:{obj['kind']} {where}{metadata['name']}"


def release_node(release: dict[str, Any]) -> str:
    return f"release:{release['name']}"


@dataclass(frozen=True)
class Graph:
    """Nodes in declaration order; `edges[a]` are the nodes `a` waits for, with a reason."""

    nodes: tuple[str, ...]
    edges: dict[str, dict[str, str]] = field(default_factory=dict)

    def needs(self, node: str) -> list[str]:
        return sorted(self.edges.get(node, {}))

    def pairs(self) -> list[tuple[str, str, str]]:
        """(node, waits for, why), sorted: what tests and `--output json` show."""
        return sorted(
            (node, dep, why) for node, deps in self.edges.items() for dep, why in deps.items()
        )

    def order(self) -> list[str]:
        """The nodes so that each comes after what it waits for (Kahn; stable by declaration).

        Raises CycleError naming the cycle."""
        position = {node: i for i, node in enumerate(self.nodes)}
        waiting = {node: set(self.edges.get(node, {})) for node in self.nodes}
        done: list[str] = []
        ready = [n for n in self.nodes if not waiting[n]]
        while ready:
            ready.sort(key=position.__getitem__)
            node = ready.pop(0)
            done.append(node)
            for other in self.nodes:
                if node in waiting[other]:
                    waiting[other].discard(node)
                    if not waiting[other]:
                        ready.append(other)
        if len(done) < len(self.nodes):
            cycle = self._cycle({n for n in self.nodes if waiting[n]})
            raise CycleError(
                "the resources of the phase wait for each other in a cycle: " + " -> ".join(cycle)
            )
        return done

    def _cycle(self, stuck: set[str]) -> list[str]:
        node = min(stuck)
        path: list[str] = []
        while node not in path:
            path.append(node)
            node = min(d for d in self.edges.get(node, {}) if d in stuck)
        return [*path[path.index(node) :], node]


def _secret_names(value: Any) -> Iterable[str]:
    """Every Secret a chart's values read (`secretKeyRef.name`, `secretName`)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "secretKeyRef" and isinstance(item, dict) and "name" in item:
                yield str(item["name"])
            elif key == "secretName" and isinstance(item, str):
                yield item
            else:
                yield from _secret_names(item)
    elif isinstance(value, list):
        for item in value:
            yield from _secret_names(item)


def dependency_graph(
    objects: list[dict[str, Any]],
    releases: list[dict[str, Any]],
    *,
    database_secret_namespace: str | None = None,
    injected_namespaces: Iterable[str] = (),
) -> Graph:
    """The phase's resources and what each waits for. Pure: reads only its arguments.

    `database_secret_namespace`: the namespace of the database Secret when the
    program declares one (node `secret:database`). `injected_namespaces`:
    namespaces an earlier phase labelled `istio-injection: enabled`."""
    nodes: list[str] = [object_node(o) for o in objects if o["kind"] == "Namespace"]
    nodes += [release_node(r) for r in releases]
    if database_secret_namespace is not None:
        nodes.append(DATABASE_SECRET_NODE)
    nodes += [object_node(o) for o in objects if o["kind"] != "Namespace"]
    edges: dict[str, dict[str, str]] = {}

    def wait(node: str, dep: str, why: str) -> None:
        if dep != node:
            edges.setdefault(node, {}).setdefault(dep, why)

    namespaces = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Namespace"}
    injected = set(injected_namespaces) | {
        name
        for name, o in namespaces.items()
        if o["metadata"].get("labels", {}).get("istio-injection") == "enabled"
    }
    by_name = {r["name"]: r for r in releases}

    def in_namespace(node: str, namespace: str | None) -> None:
        if namespace in namespaces:
            wait(node, object_node(namespaces[namespace]), "lives in it")

    for release in releases:
        node = release_node(release)
        in_namespace(node, release.get("namespace"))
        for before in RELEASE_ORDER.get(release["name"], ()):
            if before in by_name:
                wait(node, release_node(by_name[before]), "operator order")
        for secret in _secret_names(release.get("values", {})):
            for obj in objects:
                for kind, pattern in SECRET_PRODUCERS:
                    match = pattern.match(secret)
                    if (
                        match
                        and obj["kind"] == kind
                        and obj["metadata"]["name"] == match["name"]
                        and obj["metadata"].get("namespace") == release.get("namespace")
                    ):
                        wait(node, object_node(obj), f"reads Secret {secret} made from it")
    if database_secret_namespace is not None:
        in_namespace(DATABASE_SECRET_NODE, database_secret_namespace)
    for obj in objects:
        if obj["kind"] == "Namespace":
            continue
        node = object_node(obj)
        namespace = obj["metadata"].get("namespace")
        in_namespace(node, namespace)
        group = str(obj["apiVersion"]).rpartition("/")[0]
        serving = GROUP_RELEASES.get(group)
        if serving in by_name:
            wait(node, release_node(by_name[serving]), f"its release serves {group}")
        if obj["kind"] in INJECTED_KINDS and namespace in injected and "istiod" in by_name:
            wait(node, release_node(by_name["istiod"]), "its pods get the sidecar")
    graph = Graph(nodes=tuple(nodes), edges=edges)
    graph.order()  # refuse a cycle here, before Pulumi starts
    return graph
