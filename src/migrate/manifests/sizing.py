"""How big each rendered pod is, and the ResourceQuota that holds them all.

The container resources the templates set come from here (`SIZES`), so the
quota of the application namespace is computed from the same numbers the
pods are rendered with, instead of being a guess that the app outgrows
(issue 12, item 4: at the HPA maxima, with Istio's default sidecar of 2 CPU
limit each, the old fixed quota of 32 CPU could not hold the app).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from migrate.manifests.components import Options

#: blue-green: replicas of the track the Service does not select. One warm pod,
#: so a rollback switches the Service to a ready pod (and the HPA, retargeted
#: with it, scales that track up), while the idle track costs one pod, not a copy.
IDLE_TRACK_REPLICAS = 1
#: Deployments roll with maxSurge 1 and maxUnavailable 0: one extra pod each
ROLLING_SURGE = 1
#: what the quota leaves above the computed maxima (debug pods, a Job, a rollout
#: that overlaps with a scale-up): 25 %, rounded up to whole CPUs and GiB
HEADROOM = 0.25

#: Kafka node pool (KRaft: every node is controller and broker) and its volume
KAFKA_NODES = 3
KAFKA_VOLUME_GI = 20
#: the analytics Elasticsearch (ECK) nodes and their data volumes
ELASTICSEARCH_NODES = 3
ELASTICSEARCH_VOLUME_GI = 50
#: Services the operators create next to ours: Strimzi's `-kafka-bootstrap` and
#: `-kafka-brokers`; ECK's `-es-http`, `-es-transport`, `-es-internal-http` and one
#: headless Service per node set; Kibana's `-kb-http`
STRIMZI_SERVICES = 2
ECK_ELASTICSEARCH_SERVICES = 4
ECK_KIBANA_SERVICES = 1


@dataclass(frozen=True)
class Size:
    """Requests and limits of one container, in millicores and MiB."""

    cpu: int
    memory: int
    cpu_limit: int
    memory_limit: int

    def to_k8s(self) -> dict[str, dict[str, str]]:
        return {
            "requests": {"cpu": _cpu(self.cpu), "memory": f"{self.memory}Mi"},
            "limits": {"cpu": _cpu(self.cpu_limit), "memory": f"{self.memory_limit}Mi"},
        }

    def __add__(self, other: Size) -> Size:
        return Size(
            self.cpu + other.cpu,
            self.memory + other.memory,
            self.cpu_limit + other.cpu_limit,
            self.memory_limit + other.memory_limit,
        )

    def __mul__(self, count: int) -> Size:
        return Size(
            self.cpu * count,
            self.memory * count,
            self.cpu_limit * count,
            self.memory_limit * count,
        )


def _cpu(millicores: int) -> str:
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


#: container -> resources; templates emit `sizes.<name>` (to_k8s)
SIZES: dict[str, Size] = {
    "plugin": Size(100, 128, 500, 512),
    "worker": Size(100, 128, 500, 512),
    "orchestrator": Size(200, 256, 1000, 1024),
    "redis": Size(100, 256, 500, 512),
    # the Envoy sidecar Istio injects, set explicitly (istiod's global.proxy.resources
    # and each pod's sidecar.istio.io/proxy* annotations); Istio's default limit is
    # 2 CPU / 1 GiB a sidecar (manifests/charts/istio-control/istio-discovery/values.yaml)
    "sidecar": Size(100, 128, 500, 256),
    "kafka": Size(250, 1024, 1000, 2048),
    "topic-operator": Size(100, 256, 500, 512),
    "user-operator": Size(100, 256, 500, 512),
    "elasticsearch": Size(500, 2048, 2000, 2048),
    "kibana": Size(250, 1024, 1000, 1024),
    # ECK's init containers (elastic-internal-init-filesystem, -suspend, Kibana's
    # -init-config) run before, never beside, the main containers: a pod's effective
    # request is the larger of the two, which is always the main containers here
}


@dataclass(frozen=True)
class PodGroup:
    """`count` pods alike, at the most the rendered set can run."""

    what: str
    count: int
    size: Size
    sidecar: bool

    @property
    def total(self) -> Size:
        per_pod = self.size + SIDECAR if self.sidecar else self.size
        return per_pod * self.count


SIDECAR = SIZES["sidecar"]


def _worker_max(options: Options, consumes: int) -> int:
    """A worker's ceiling: KEDA's maxReplicaCount (k8s/keda.yaml.j2), else 1 replica."""
    if not options.has("hpa"):
        return 1
    return options.worker_max_replicas(consumes)


def queue_rendered(options: Options, consumers: bool) -> bool:
    """Whether the queue's Redis is rendered: with the orchestrator (its bus: /readyz needs
    it, even when no plugin consumes events) and with the workers when a plugin consumes
    events (`consumers`)."""
    return options.has("orchestrator") or (options.has("workers") and consumers)


def pod_groups(
    options: Options, plugins: Iterable[Mapping[str, Any]], gateway_in_namespace: bool = False
) -> list[PodGroup]:
    """Every pod the application namespace can hold at once, grouped by kind."""
    mesh = options.has("istio")
    hpa = options.has("hpa")
    groups: list[PodGroup] = []
    plugins = list(plugins)
    if options.has("workloads"):
        serving = options.max_replicas if hpa else options.replicas
        for plugin in plugins:
            if options.strategy == "blue-green":
                count = serving + IDLE_TRACK_REPLICAS + 2 * ROLLING_SURGE
            else:
                count = serving + ROLLING_SURGE
            groups.append(PodGroup(f"plugin {plugin['name']}", count, SIZES["plugin"], mesh))
    if options.has("workers"):
        for plugin in plugins:
            if plugin["consumes"]:
                count = _worker_max(options, len(plugin["consumes"])) + ROLLING_SURGE
                groups.append(PodGroup(f"worker {plugin['name']}", count, SIZES["worker"], mesh))
    if queue_rendered(options, any(plugin["consumes"] for plugin in plugins)):
        groups.append(PodGroup("queue (Redis)", 1, SIZES["redis"], mesh))
    if options.has("orchestrator"):
        count = (options.max_replicas if hpa else 2) + ROLLING_SURGE
        groups.append(PodGroup("orchestrator", count, SIZES["orchestrator"], mesh))
    if options.has("redis"):
        groups.append(PodGroup("cache (Redis)", 1, SIZES["redis"], mesh))
    # operator-made pods run without a sidecar (injection is off in their templates)
    if options.has("kafka"):
        groups.append(PodGroup("Kafka nodes (Strimzi)", KAFKA_NODES, SIZES["kafka"], False))
        operators = SIZES["topic-operator"] + SIZES["user-operator"]
        groups.append(PodGroup("Strimzi entity operator", 1, operators, False))
    if options.has("elasticsearch"):
        groups.append(
            PodGroup(
                "Elasticsearch nodes (ECK)", ELASTICSEARCH_NODES, SIZES["elasticsearch"], False
            )
        )
    if options.has("kibana"):
        # ECK rolls Kibana's Deployment with a surge pod
        groups.append(PodGroup("Kibana (ECK)", 1 + ROLLING_SURGE, SIZES["kibana"], False))
    if gateway_in_namespace:
        # a Gateway API controller that deploys the Gateway's proxy into the Gateway's
        # namespace (Istio does): one proxy pod and its rollout surge, sized like a sidecar
        groups.append(PodGroup("Gateway proxy", 1 + ROLLING_SURGE, SIDECAR, False))
    return groups


def resource_quota(
    options: Options, plugins: Iterable[Mapping[str, Any]], gateway_in_namespace: bool = False
) -> dict[str, Any]:
    """The `spec.hard` of the namespace's ResourceQuota, from what is rendered.

    The sum, per pod group of `pod_groups`: the replicas at their maxima (a plugin's
    active track at the HPA's maxReplicas, its idle track at IDLE_TRACK_REPLICAS, a
    worker at KEDA's maxReplicaCount, the orchestrator at its HPA's maximum), plus
    one surge pod per Deployment for a rollout, times the pod's containers, plus the
    Istio sidecar in every pod that gets one (ours, when the roadmap has the mesh),
    plus the pods the operators make in the namespace (Strimzi's Kafka nodes and
    entity operator, ECK's Elasticsearch and Kibana), which run without a sidecar.
    CPU and memory, requests and limits, then get HEADROOM and are rounded up to
    whole CPUs and GiB; the pod count gets the same headroom. Services and
    persistent volume claims are counted the same way, the operators' included.
    """
    plugins = list(plugins)
    groups = pod_groups(options, plugins, gateway_in_namespace)
    total = Size(0, 0, 0, 0)
    pods = 0
    for group in groups:
        total = total + group.total
        pods += group.count

    def cpu(millicores: int) -> str:
        return str(math.ceil(millicores * (1 + HEADROOM) / 1000))

    def memory(mib: int) -> str:
        return f"{math.ceil(mib * (1 + HEADROOM) / 1024)}Gi"

    services = 0
    claims = 0
    storage_gi = 0
    if options.has("workloads"):
        services += len(plugins)
    if options.has("orchestrator"):
        services += 1
    # a Redis has a client Service and the headless one that governs its StatefulSet
    queue = queue_rendered(options, any(plugin["consumes"] for plugin in plugins))
    services += 2 * (queue + options.has("redis"))
    if options.has("kafka"):
        services += STRIMZI_SERVICES
        claims += KAFKA_NODES
        storage_gi += KAFKA_NODES * KAFKA_VOLUME_GI
    if options.has("elasticsearch"):
        services += ECK_ELASTICSEARCH_SERVICES
        claims += ELASTICSEARCH_NODES
        storage_gi += ELASTICSEARCH_NODES * ELASTICSEARCH_VOLUME_GI
    if options.has("kibana"):
        services += ECK_KIBANA_SERVICES
    if gateway_in_namespace:
        services += 1  # the Gateway's own Service

    def count(n: int) -> str:
        return str(max(math.ceil(n * (1 + HEADROOM)), n + 2))

    return {
        "requests.cpu": cpu(total.cpu),
        "requests.memory": memory(total.memory),
        "limits.cpu": cpu(total.cpu_limit),
        "limits.memory": memory(total.memory_limit),
        "pods": count(pods),
        "services": count(services),
        "persistentvolumeclaims": count(claims),
        "requests.storage": f"{max(math.ceil(storage_gi * (1 + HEADROOM)), 10)}Gi",
    }


def template_sizes() -> dict[str, dict[str, dict[str, str]]]:
    """What templates see: `sizes.<container>` as Kubernetes `resources`."""
    return {name: size.to_k8s() for name, size in SIZES.items()}


def sidecar_annotations() -> dict[str, str]:
    """Istio's per-pod sidecar resource annotations, equal to istiod's global default."""
    return {
        "sidecar.istio.io/proxyCPU": _cpu(SIDECAR.cpu),
        "sidecar.istio.io/proxyMemory": f"{SIDECAR.memory}Mi",
        "sidecar.istio.io/proxyCPULimit": _cpu(SIDECAR.cpu_limit),
        "sidecar.istio.io/proxyMemoryLimit": f"{SIDECAR.memory_limit}Mi",
    }
