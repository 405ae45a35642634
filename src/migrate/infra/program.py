"""The inline Pulumi program of one phase.

Each rendered object becomes its pulumi-kubernetes resource (typed classes
for the built-in API groups, `apiextensions.CustomResource` for the rest),
through one explicit `Provider` bound to `target.kube_context`. Helm
releases install the operators and the monitoring stack at pinned chart
versions; custom resources wait for them (their CRDs come with them). The
database URL, when migrate knows one, becomes a Secret whose value is a
Pulumi secret: encrypted in the state, never in a file migrate writes.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from migrate.secrets import Secret

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
    previous_stack: str | None = None  # fully qualified: organization/<project>/<stack>


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


def build_program(spec: StackSpec) -> Callable[[], None]:
    """The inline program for `pulumi.automation` (and for Pulumi's unit-test mocks)."""

    def program() -> None:
        import pulumi
        import pulumi_kubernetes as k8s

        provider_args: dict[str, Any] = {}
        if spec.kube_context:
            provider_args["context"] = spec.kube_context
        provider = k8s.Provider("kubernetes", **provider_args)
        base = pulumi.ResourceOptions(provider=provider)

        namespace_output: Any = spec.namespace
        if spec.previous_stack:
            # the previous phase must be up: its namespace output is this phase's namespace
            previous = pulumi.StackReference(spec.previous_stack)
            namespace_output = previous.get_output("namespace").apply(
                lambda value: value or spec.namespace
            )
            pulumi.export("previousStack", spec.previous_stack)

        namespaces = [declare(obj, base) for obj in spec.objects if obj["kind"] == "Namespace"]
        after_namespaces = pulumi.ResourceOptions.merge(
            base, pulumi.ResourceOptions(depends_on=namespaces)
        )
        releases = [
            k8s.helm.v3.Release(
                release["name"],
                k8s.helm.v3.ReleaseArgs(
                    chart=release["chart"],
                    version=release["version"],
                    namespace=release["namespace"],
                    create_namespace=True,
                    repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=release["repository"]),
                    values=release.get("values", {}),
                ),
                opts=after_namespaces,
            )
            for release in spec.releases
        ]
        after_platform = pulumi.ResourceOptions.merge(
            base, pulumi.ResourceOptions(depends_on=[*namespaces, *releases])
        )
        if spec.database_url is not None and namespaces:
            k8s.core.v1.Secret(
                f"{spec.namespace}/{spec.database_secret}",
                metadata={
                    "name": spec.database_secret,
                    "namespace": spec.namespace,
                    "labels": {"app.kubernetes.io/managed-by": "migrate"},
                },
                type="Opaque",
                string_data={
                    spec.database_secret_key: pulumi.Output.secret(spec.database_url.reveal())
                },
                opts=after_namespaces,
            )
        for obj in spec.objects:
            if obj["kind"] == "Namespace":
                continue
            name = resource_name(obj)
            if spec.previous_stack and obj["metadata"].get("namespace") == spec.namespace:
                obj = {**obj, "metadata": {**obj["metadata"], "namespace": namespace_output}}
            declare(obj, after_platform, name)

        pulumi.export("namespace", spec.namespace)
        pulumi.export("phase", spec.phase)
        pulumi.export("objects", len(spec.objects))
        pulumi.export("releases", [r["name"] for r in spec.releases])

    return program
