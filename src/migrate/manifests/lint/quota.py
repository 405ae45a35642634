"""The ResourceQuota of a namespace against the pods the set makes there, at their maxima.

For every pod the rendered set makes in a quota'd namespace (workloads at
their autoscaler's maximum, and the pods the operators make from rendered
custom resources: Strimzi's brokers and entity operator, ECK's Elasticsearch
nodes and Kibana), the container requests and limits are summed as the API
server counts them: a missing request or limit takes the LimitRange's
`defaultRequest`/`default` (a missing request takes the limit when one is
set), a pod counts max(sum of its containers, its largest init container),
and a pod Istio injects carries the `istio-proxy` sidecar with the resources
Istio's injection template gives it: the `sidecar.istio.io/proxyCPU`,
`proxyCPULimit`, `proxyMemory`, `proxyMemoryLimit` annotations when any is set
(only those), else the istiod release's `global.proxy.resources`, else the
chart's defaults. The sums must fit `spec.hard` (requests.*, limits.*, pods).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from migrate.manifests.lint import Finding, SetModel, rule
from migrate.manifests.model import Manifest

K8S_QUOTA = "https://kubernetes.io/docs/concepts/policy/resource-quotas/"
ISTIO_VALUES = (
    "istio/istio manifests/charts/istio-control/istio-discovery/values.yaml "
    "(global.proxy.resources) and files/injection-template.yaml (sidecar.istio.io/proxyCPU...)"
)
ECK_RESOURCES = (
    "https://www.elastic.co/guide/en/cloud-on-k8s/current/k8s-managing-compute-resources.html"
)

#: the istiod chart's sidecar resources (global.proxy.resources in
#: manifests/charts/istio-control/istio-discovery/values.yaml of istio/istio)
ISTIO_PROXY_DEFAULTS: dict[str, dict[str, str]] = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"cpu": "2000m", "memory": "1024Mi"},
}
#: ECK's defaults when a podTemplate sets no resources for the main container
ECK_DEFAULTS: dict[str, dict[str, dict[str, str]]] = {
    "elasticsearch": {"requests": {"memory": "2Gi"}, "limits": {"memory": "2Gi"}},
    "kibana": {"requests": {"memory": "1Gi"}, "limits": {"memory": "1Gi"}},
}
RESOURCES = ("cpu", "memory")

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(
    r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$"
)


class QuantityError(ValueError):
    pass


def quantity(value: Any) -> Decimal:
    """A Kubernetes quantity (`100m`, `1.5`, `512Mi`, `2G`, `1e3`) as a Decimal of base units."""
    if isinstance(value, bool):
        raise QuantityError(f"not a quantity: {value!r}")
    if isinstance(value, int | float):
        return Decimal(str(value))
    match = _QUANTITY.match(str(value).strip())
    if not match:
        raise QuantityError(f"not a quantity: {value!r}")
    number, exponent, suffix = match.groups()
    try:
        amount = Decimal(number)
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        raise QuantityError(f"not a quantity: {value!r}") from None
    if exponent:
        return amount * Decimal(10) ** int(exponent[1:])
    suffix = suffix or ""
    if suffix in _BINARY:
        return amount * _BINARY[suffix]
    return amount * _DECIMAL[suffix]


def show(resource: str, amount: Decimal) -> str:
    """`12.5` cores, `3.25Gi`: a sum in the unit people read."""
    if resource.endswith("cpu"):
        return f"{amount.normalize():f}"
    if resource.endswith("memory") or resource.endswith("storage"):
        return f"{(amount / _BINARY['Gi']).quantize(Decimal('0.01')).normalize():f}Gi"
    return f"{amount.normalize():f}"


@dataclass
class PodGroup:
    """Pods that share one template: `count` of them, each costing `cost`."""

    owner: Manifest
    what: str  # `Deployment planner-blue`, `Kafka broker pool x`
    count: int
    cost: dict[str, Decimal] = field(default_factory=dict)  # `requests.cpu` -> per pod
    missing: list[str] = field(default_factory=list)  # `limits.cpu of container x`
    sidecar: bool = False


def _defaults(model: SetModel, namespace: str | None) -> dict[str, dict[str, Any]]:
    """The LimitRange's Container `default` (limits) and `defaultRequest` (requests)."""
    found: dict[str, dict[str, Any]] = {"limits": {}, "requests": {}}
    for m in model.of_kind("LimitRange"):
        if m.namespace != namespace:
            continue
        for limit in (m.obj.get("spec") or {}).get("limits") or []:
            if limit.get("type") != "Container":
                continue
            default = dict(limit.get("default") or {})
            found["limits"].update(default)
            found["requests"].update(default | dict(limit.get("defaultRequest") or {}))
    return found


def _container_cost(
    resources: dict[str, Any] | None, defaults: dict[str, dict[str, Any]], name: str
) -> tuple[dict[str, Decimal], list[str]]:
    resources = resources or {}
    limits = dict(resources.get("limits") or {})
    requests = dict(resources.get("requests") or {})
    cost: dict[str, Decimal] = {}
    missing: list[str] = []
    for resource in RESOURCES:
        limit = limits.get(resource, defaults["limits"].get(resource))
        request = requests.get(resource, limits.get(resource))
        if request is None:
            request = defaults["requests"].get(resource)
        if limit is not None:
            cost[f"limits.{resource}"] = quantity(limit)
        else:
            missing.append(f"limits.{resource} of container {name}")
        if request is not None:
            cost[f"requests.{resource}"] = quantity(request)
        else:
            missing.append(f"requests.{resource} of container {name}")
    return cost, missing


def _injected(model: SetModel, namespace: str | None, metadata: dict[str, Any]) -> bool:
    """Whether Istio's webhook injects a sidecar into a pod with this metadata."""
    labels = dict(metadata.get("labels") or {})
    annotations = dict(metadata.get("annotations") or {})
    pod_says = labels.get("sidecar.istio.io/inject", annotations.get("sidecar.istio.io/inject"))
    if str(pod_says).lower() == "false":
        return False
    ns = model.namespace_labels(namespace)
    if ns.get("istio-injection") == "disabled":
        return False
    return (
        ns.get("istio-injection") == "enabled"
        or "istio.io/rev" in ns
        or str(pod_says).lower() == "true"
    )


def _proxy_resources(model: SetModel, annotations: dict[str, str]) -> dict[str, Any]:
    keys = {
        ("requests", "cpu"): "sidecar.istio.io/proxyCPU",
        ("requests", "memory"): "sidecar.istio.io/proxyMemory",
        ("limits", "cpu"): "sidecar.istio.io/proxyCPULimit",
        ("limits", "memory"): "sidecar.istio.io/proxyMemoryLimit",
    }
    if any(a in annotations for a in keys.values()):
        resources: dict[str, dict[str, Any]] = {"requests": {}, "limits": {}}
        for (kind, resource), annotation in keys.items():
            if annotation in annotations:
                resources[kind][resource] = annotations[annotation]
        return resources
    release = model.release("istiod")
    if release is not None:
        configured = ((release.values.get("global") or {}).get("proxy") or {}).get("resources")
        if configured is not None:
            return dict(configured)
    return ISTIO_PROXY_DEFAULTS


def _group(
    model: SetModel,
    owner: Manifest,
    what: str,
    count: int,
    pod: dict[str, Any],
    metadata: dict[str, Any],
    fallback: dict[str, dict[str, Any]] | None = None,
) -> PodGroup:
    """Per-pod cost of `pod` (containers, init containers, sidecar) in owner's namespace."""
    defaults = _defaults(model, owner.namespace)
    group = PodGroup(owner=owner, what=what, count=count)
    running: dict[str, Decimal] = {}
    largest_init: dict[str, Decimal] = {}
    for container in pod.get("containers") or []:
        resources = container.get("resources") or (fallback or {}).get(container.get("name", ""))
        cost, missing = _container_cost(resources, defaults, str(container.get("name")))
        group.missing += missing
        for key, value in cost.items():
            running[key] = running.get(key, Decimal(0)) + value
    for container in pod.get("initContainers") or []:
        cost, missing = _container_cost(
            container.get("resources"), defaults, str(container.get("name"))
        )
        group.missing += missing
        native_sidecar = container.get("restartPolicy") == "Always"
        for key, value in cost.items():
            if native_sidecar:
                running[key] = running.get(key, Decimal(0)) + value
            else:
                largest_init[key] = max(largest_init.get(key, Decimal(0)), value)
    if _injected(model, owner.namespace, metadata):
        group.sidecar = True
        annotations = dict(metadata.get("annotations") or {})
        cost, missing = _container_cost(
            _proxy_resources(model, annotations), defaults, "istio-proxy"
        )
        group.missing += missing
        for key, value in cost.items():
            running[key] = running.get(key, Decimal(0)) + value
    for key in set(running) | set(largest_init):
        group.cost[key] = max(running.get(key, Decimal(0)), largest_init.get(key, Decimal(0)))
    return group


def _operator_groups(model: SetModel, namespace: str | None) -> Iterator[PodGroup]:
    """The pods the operators make from the rendered custom resources of `namespace`."""
    pools: dict[str, list[Manifest]] = {}
    for m in model.of_kind("KafkaNodePool"):
        if m.namespace == namespace and m.group == "kafka.strimzi.io":
            cluster = str((m.obj.get("metadata", {}).get("labels") or {}).get("strimzi.io/cluster"))
            pools.setdefault(cluster, []).append(m)
    for m in model.of_kind("Kafka"):
        if m.namespace != namespace or m.group != "kafka.strimzi.io":
            continue
        spec = m.obj.get("spec") or {}
        kafka = spec.get("kafka") or {}
        kafka_meta = ((kafka.get("template") or {}).get("pod") or {}).get("metadata") or {}
        for pool in pools.get(m.name, []):
            pool_spec = pool.obj.get("spec") or {}
            meta = ((pool_spec.get("template") or {}).get("pod") or {}).get("metadata")
            pod = {
                "containers": [
                    {
                        "name": "kafka",
                        "resources": pool_spec.get("resources") or kafka.get("resources"),
                    }
                ]
            }
            yield _group(
                model,
                pool,
                f"{pool.ref} (Strimzi broker pods)",
                int(pool_spec.get("replicas", 0)),
                pod,
                meta or kafka_meta,
            )
        if not pools.get(m.name) and kafka.get("replicas"):
            pod = {"containers": [{"name": "kafka", "resources": kafka.get("resources")}]}
            yield _group(
                model, m, f"{m.ref} (Strimzi broker pods)", int(kafka["replicas"]), pod, kafka_meta
            )
        zookeeper = spec.get("zookeeper") or {}
        if zookeeper.get("replicas"):
            pod = {"containers": [{"name": "zookeeper", "resources": zookeeper.get("resources")}]}
            meta = ((zookeeper.get("template") or {}).get("pod") or {}).get("metadata") or {}
            yield _group(
                model, m, f"{m.ref} (ZooKeeper pods)", int(zookeeper["replicas"]), pod, meta
            )
        entity = spec.get("entityOperator")
        if entity is not None:
            containers = [
                {"name": name, "resources": (entity.get(key) or {}).get("resources")}
                for key, name in (
                    ("topicOperator", "topic-operator"),
                    ("userOperator", "user-operator"),
                )
                if key in entity
            ]
            if containers:
                meta = ((entity.get("template") or {}).get("pod") or {}).get("metadata") or {}
                yield _group(
                    model,
                    m,
                    f"{m.ref} (Strimzi entity operator pod)",
                    1,
                    {"containers": containers},
                    meta,
                )
    for m in model.of_kind("Elasticsearch"):
        if m.namespace != namespace or m.group != "elasticsearch.k8s.elastic.co":
            continue
        for node_set in (m.obj.get("spec") or {}).get("nodeSets") or []:
            template = node_set.get("podTemplate") or {}
            pod = dict(template.get("spec") or {})
            pod["containers"] = pod.get("containers") or [{"name": "elasticsearch"}]
            yield _group(
                model,
                m,
                f"{m.ref} nodeSet {node_set.get('name')} (ECK pods)",
                int(node_set.get("count", 0)),
                pod,
                template.get("metadata") or {},
                fallback=ECK_DEFAULTS,
            )
    for m in model.of_kind("Kibana"):
        if m.namespace != namespace or m.group != "kibana.k8s.elastic.co":
            continue
        spec = m.obj.get("spec") or {}
        template = spec.get("podTemplate") or {}
        pod = dict(template.get("spec") or {})
        pod["containers"] = pod.get("containers") or [{"name": "kibana"}]
        yield _group(
            model,
            m,
            f"{m.ref} (ECK pods)",
            int(spec.get("count", 1)),
            pod,
            template.get("metadata") or {},
            fallback=ECK_DEFAULTS,
        )


def pod_groups(model: SetModel, namespace: str | None) -> list[PodGroup]:
    """Every pod the set makes in `namespace`, grouped by template, at its maximum."""
    groups = [
        _group(
            model,
            w.manifest,
            w.manifest.ref,
            w.max_replicas,
            w.pod,
            {"labels": w.labels, "annotations": w.annotations},
        )
        for w in model.workloads
        if w.manifest.namespace == namespace and w.manifest.kind != "DaemonSet"
    ]
    groups += list(_operator_groups(model, namespace))
    return groups


@rule("quota-fits", "the ResourceQuota holds the rendered pods at their maxima, sidecars included")
def quota_fits(model: SetModel) -> Iterator[Finding]:
    for quota in model.of_kind("ResourceQuota"):
        spec = quota.obj.get("spec") or {}
        if spec.get("scopes") or spec.get("scopeSelector"):
            continue  # a scoped quota counts only some pods; not judged here
        hard = {str(k): v for k, v in (spec.get("hard") or {}).items()}
        groups = pod_groups(model, quota.namespace)
        if not groups:
            continue
        sidecars = sum(g.count for g in groups if g.sidecar)
        for key, limit in sorted(hard.items()):
            wanted = {"cpu": "requests.cpu", "memory": "requests.memory"}.get(key, key)
            if wanted == "pods":
                need = Decimal(sum(g.count for g in groups))
            elif wanted in {f"{k}.{r}" for k in ("requests", "limits") for r in RESOURCES}:
                need = sum((g.cost.get(wanted, Decimal(0)) * g.count for g in groups), Decimal(0))
            else:
                continue
            try:
                allowed = quantity(limit)
            except QuantityError:
                continue
            if need <= allowed:
                continue
            top = sorted(groups, key=lambda g: g.cost.get(wanted, Decimal(1)) * g.count)[::-1][:3]
            detail = ", ".join(
                f"{g.what}: {g.count} pod(s)"
                + (f" x {show(wanted, g.cost.get(wanted, Decimal(0)))}" if wanted != "pods" else "")
                for g in top
            )
            yield Finding(
                rule="quota-fits",
                severity="error",
                object=quota.ref,
                file=SetModel.where(quota),
                message=f"hard {key} is {limit}, but the rendered pods at their maxima need "
                f"{show(wanted, need)} ({sum(g.count for g in groups)} pods, {sidecars} with "
                f"an Istio sidecar; largest: {detail})",
                fix=f"raise spec.hard[{key}] to at least {show(wanted, need)}, or lower the "
                "autoscalers' maxima or the containers' resources (the sidecar's: "
                "sidecar.istio.io/proxyCPU... annotations or the istiod release's "
                "global.proxy.resources)",
                source=f"{K8S_QUOTA}; {ISTIO_VALUES}",
            )
        aliases = {"cpu": "requests.cpu", "memory": "requests.memory"}
        limited = {aliases.get(k, k) for k in hard}
        for g in groups:
            missing = [item for item in g.missing if item.split(" ")[0] in limited]
            if missing:
                yield Finding(
                    rule="quota-fits",
                    severity="error",
                    object=g.owner.ref,
                    file=SetModel.where(g.owner),
                    message=f"{g.what}: sets no {', '.join(missing)}, and no LimitRange of "
                    f"namespace {quota.namespace} defaults it, so the quota {quota.name} "
                    "refuses its pods",
                    fix="set the container's resources, or a LimitRange default",
                    source=K8S_QUOTA + "#requests-vs-limits",
                )
