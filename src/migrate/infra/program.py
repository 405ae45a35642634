"""The inline Pulumi program of one phase.

Each rendered object becomes its pulumi-kubernetes resource (typed classes
for the built-in API groups, `apiextensions.CustomResource` for the rest),
through one explicit `Provider` bound to the pinned kube context. Helm
releases install the operators and the monitoring stack at pinned chart
versions, under their own names. What waits for what is the dependency
graph (`migrate.infra.graph`); what is retained on delete, `retention`. The
database URL, when migrate knows one, becomes a Secret whose value is a
Pulumi secret: encrypted in the state, never in a file migrate writes.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from migrate.infra.graph import (
    DATABASE_SECRET_NODE,
    Graph,
    dependency_graph,
    object_node,
    release_node,
)
from migrate.infra.retention import retained_object, retained_release, with_data_kept
from migrate.secrets import Secret

#: the stack output that holds the applied set: {task: digest of its record}
APPLIED_OUTPUT = "migrateApplied"

#: API group -> pulumi_kubernetes module
GROUP_MODULES: dict[str, str] = {
    "": "core",
    "admissionregistration.k8s.io": "admissionregistration",
    "apiextensions.k8s.io": "apiextensions",
    "apps": "apps",
    "autoscaling": "autoscaling",
    "batch": "batch",
    "coordination.k8s.io": "coordination",
    "discovery.k8s.io": "discovery",
    "networking.k8s.io": "networking",
    "node.k8s.io": "node",
    "policy": "policy",
    "rbac.authorization.k8s.io": "rbac",
    "scheduling.k8s.io": "scheduling",
    "storage.k8s.io": "storage",
}
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


@dataclass(frozen=True)
class StackSpec:
    """Everything the program of one phase declares."""

    project: str
    phase: int
    namespace: str
    objects: list[dict[str, Any]]
    releases: list[dict[str, Any]] = field(default_factory=list)
    kube_context: str | None = None
    database_url: Secret | None = None
    database_secret: str = ""
    database_secret_key: str = "url"
    #: the previous phase's stack (short name): referenced fully qualified, in this
    #: program's own organization and project
    previous_stack: str | None = None
    #: task -> digest of its applied record: exported, read back before the next `up`
    applied: dict[str, str] = field(default_factory=dict)
    keep_data: bool = True
    #: namespaces an earlier phase labelled istio-injection=enabled
    injected_namespaces: tuple[str, ...] = ()


def resource_name(obj: dict[str, Any]) -> str:
    """The Pulumi logical name: `<namespace>/<name>` or `<name>` (unique per type)."""
    metadata = obj["metadata"]
    namespace = metadata.get("namespace")
    return f"{namespace}/{metadata['name']}" if namespace else str(metadata["name"])


def _snake(key: str) -> str:
    return _CAMEL.sub("_", key).lower()


def resource_class(api_version: str, kind: str) -> Any | None:
    """The typed pulumi-kubernetes class of a built-in kind, or None for a custom resource."""
    group, _, version = api_version.rpartition("/")
    module = GROUP_MODULES.get(group)
    if module is None:
        return None
    try:
        return getattr(importlib.import_module(f"pulumi_kubernetes.{module}.{version}"), kind)
    except (ImportError, AttributeError):
        return None


def declare(obj: dict[str, Any], opts: Any, name: str | None = None) -> Any:
    """Declare one Kubernetes object as a pulumi-kubernetes resource."""
    import pulumi_kubernetes as k8s

    cls = resource_class(obj["apiVersion"], obj["kind"])
    name = name or resource_name(obj)
    if cls is None:
        return k8s.apiextensions.CustomResource(
            name,
            api_version=obj["apiVersion"],
            kind=obj["kind"],
            metadata=obj["metadata"],
            spec=obj.get("spec"),
            opts=opts,
        )
    # top-level fields as the typed class's keyword arguments; nested values stay in
    # Kubernetes' own camelCase (as pulumi_kubernetes.yaml does)
    kwargs = {_snake(k): v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    return cls(name, opts=opts, **kwargs)


def graph_for(spec: StackSpec, database_secret: bool) -> Graph:
    """The dependency graph of the phase's program (see `migrate.infra.graph`)."""
    return dependency_graph(
        spec.objects,
        spec.releases,
        database_secret_namespace=spec.namespace if database_secret else None,
        injected_namespaces=spec.injected_namespaces,
    )


@dataclass(frozen=True)
class Declaration:
    """One resource of the program: what it waits for, whether Pulumi retains it on delete."""

    node: str
    needs: tuple[str, ...]
    retain: bool


def declarations(spec: StackSpec, database_secret: bool) -> list[Declaration]:
    """The program as data, in declaration order. Pure."""
    graph = graph_for(spec, database_secret)
    objects = {object_node(o): o for o in spec.objects}
    releases = {release_node(r): r for r in spec.releases}
    result = []
    for node in graph.order():
        if node in releases:
            retain = retained_release(releases[node], spec.keep_data)
        elif node in objects:
            retain = retained_object(objects[node], spec.keep_data)
        else:
            retain = False
        result.append(Declaration(node, tuple(graph.needs(node)), retain))
    return result


def build_program(spec: StackSpec) -> Callable[[], None]:
    """The inline program for `pulumi.automation` (and for Pulumi's unit-test mocks).

    Resources are declared in the order of the dependency graph, each with
    `depends_on` exactly its edges."""

    def program() -> None:
        import pulumi
        import pulumi_kubernetes as k8s

        from migrate.manifests.helm import install_options

        provider_args: dict[str, Any] = {}
        if spec.kube_context:
            provider_args["context"] = spec.kube_context
        provider = k8s.Provider("kubernetes", **provider_args)

        namespace_output: Any = spec.namespace
        if spec.previous_stack:
            # fully qualified in every backend: the organization and project this program
            # runs in ("organization" on a DIY backend)
            reference = "/".join(
                (pulumi.get_organization(), pulumi.get_project(), spec.previous_stack)
            )
            previous = pulumi.StackReference(reference)
            namespace_output = previous.get_output("namespace").apply(
                lambda value: value or spec.namespace
            )
            pulumi.export("previousStack", reference)

        database_url: Any = None
        if spec.database_url is not None:
            database_url = pulumi.Output.secret(spec.database_url.reveal())
        else:  # kept in the stack's config by an earlier run (a secret)
            database_url = pulumi.Config("migrate").get_secret("databaseUrl")
        namespace_declared = any(
            o["kind"] == "Namespace" and o["metadata"]["name"] == spec.namespace
            for o in spec.objects
        )
        with_secret = database_url is not None and namespace_declared
        objects = {object_node(o): o for o in spec.objects}
        releases = {release_node(r): r for r in spec.releases}
        declared: dict[str, Any] = {}

        for item in declarations(spec, with_secret):
            node = item.node
            opts = pulumi.ResourceOptions(
                provider=provider,
                depends_on=[declared[d] for d in item.needs],
                retain_on_delete=item.retain or None,
            )
            if node == DATABASE_SECRET_NODE:
                declared[node] = k8s.core.v1.Secret(
                    f"{spec.namespace}/{spec.database_secret}",
                    metadata={
                        "name": spec.database_secret,
                        "namespace": spec.namespace,
                        "labels": {"app.kubernetes.io/managed-by": "migrate"},
                    },
                    type="Opaque",
                    string_data={spec.database_secret_key: database_url},
                    opts=opts,
                )
            elif node in releases:
                release = releases[node]
                install = install_options(release["name"])
                declared[node] = k8s.helm.v3.Release(
                    release["name"],
                    k8s.helm.v3.ReleaseArgs(
                        name=install["name"],
                        chart=release["chart"],
                        version=release["version"],
                        namespace=release["namespace"],
                        create_namespace=True,
                        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=release["repository"]),
                        values=release.get("values", {}),
                        timeout=install["timeout"],
                        atomic=install["atomic"],
                        cleanup_on_fail=install["cleanup_on_fail"],
                    ),
                    opts=opts,
                )
            else:
                obj = objects[node]
                name = resource_name(obj)
                provisioned = with_data_kept(obj, spec.keep_data)
                if (
                    spec.previous_stack
                    and obj["kind"] != "Namespace"
                    and obj["metadata"].get("namespace") == spec.namespace
                ):
                    provisioned = {
                        **provisioned,
                        "metadata": {**provisioned["metadata"], "namespace": namespace_output},
                    }
                declared[node] = declare(provisioned, opts, name)

        pulumi.export("namespace", spec.namespace)
        pulumi.export("phase", spec.phase)
        pulumi.export("objects", len(spec.objects))
        pulumi.export("releases", [r["name"] for r in spec.releases])
        # the desired state, with the stack: read back before the next `up`
        pulumi.export(APPLIED_OUTPUT, spec.applied)

    return program
