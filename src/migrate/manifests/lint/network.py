"""NetworkPolicy: every flow the architecture needs is allowed, and no rule allows everything.

The flows come from what is rendered: each pod's environment (the URLs and bootstrap
servers it connects to), DNS and istiod for every pod, the ingress controller to the
Services of the Ingresses, Prometheus to what its monitors scrape, the operators to the
pods they manage, KEDA to the brokers, fluent-bit to Elasticsearch. A small evaluator reads
the policies the way the NetworkPolicy API defines them: a pod selected by a policy of a
type is isolated for that direction, and a flow passes when the source's egress and the
destination's ingress both allow it (podSelector, namespaceSelector, ipBlock, ports by
number or name, endPort).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from migrate.manifests.lint import Finding, SetModel, rule
from migrate.manifests.lint.charts import chart_pod
from migrate.manifests.lint.mesh import _calls
from migrate.manifests.lint.operated import all_pods, resolve_host
from migrate.manifests.lint.pods import KUBE_DNS, Pod, dig, is_injected, matches, namespace_labels

NETPOL = "https://kubernetes.io/docs/concepts/services-networking/network-policies/"
STRIMZI_NETPOL = (
    "strimzi-kafka-operator cluster-operator/.../model/KafkaCluster.java (generateNetworkPolicy: "
    "9090 control plane, 9091 replication from operators, 8443 KafkaAgent)"
)
ISTIO_PORTS = (
    "https://istio.io/latest/docs/ops/deployment/application-requirements/#ports-used-by-istio"
)
EXTERNAL = Pod(owner="a host outside the cluster", namespace="", labels={}, operator="external")
API_SERVER = Pod(owner="the Kubernetes API server", namespace="", labels={}, operator="external")
DEFAULT_PORTS = {"http": 80, "https": 443, "redis": 6379, "rediss": 6379, "postgresql": 5432}
DNS_OR_API_PORTS = {53, 443, 6443}


@dataclass(frozen=True)
class Flow:
    source: Pod
    target: Pod
    port: int
    protocol: str
    why: str


def _peer(peer: dict[str, Any], policy_ns: str, model: SetModel, other: Pod) -> bool:
    if not peer:
        return True
    if "ipBlock" in peer:
        return other.operator == "external" or peer["ipBlock"].get("cidr") in ("0.0.0.0/0", "::/0")
    if other.operator == "external":
        return False
    ns_selector = peer.get("namespaceSelector")
    if ns_selector is None and other.namespace != policy_ns:
        return False
    if ns_selector is not None and not matches(
        ns_selector, namespace_labels(model, other.namespace)
    ):
        return False
    return matches(peer.get("podSelector"), other.labels)


def _port(ports: list[dict[str, Any]], flow: Flow) -> bool:
    if not ports:
        return True
    for item in ports:
        if item.get("protocol", "TCP") != flow.protocol:
            continue
        port = item.get("port")
        if port is None:
            return True
        if isinstance(port, str) and not port.isdigit():
            if flow.target.port_numbers().get(port) == flow.port:
                return True
        elif int(port) <= flow.port <= int(item.get("endPort", port)):
            return True
    return False


def _types(policy: dict[str, Any]) -> list[str]:
    spec = policy.get("spec") or {}
    return spec.get("policyTypes") or (["Ingress"] + (["Egress"] if "egress" in spec else []))


def _side(model: SetModel, flow: Flow, direction: str) -> bool:
    """Whether the policies of the pod on this side of the flow let it pass."""
    pod, other = (flow.source, flow.target) if direction == "Egress" else (flow.target, flow.source)
    if pod.operator == "external":
        return True
    key, peers = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    selecting = [
        p
        for p in model.of_kind("NetworkPolicy")
        if p.namespace == pod.namespace
        and direction in _types(p.obj)
        and matches(dig(p.obj, "spec", "podSelector"), pod.labels)
    ]
    if not selecting:
        return True
    for policy in selecting:
        for item in dig(policy.obj, "spec", key) or []:
            listed = item.get(peers)
            if (not listed or any(_peer(x, pod.namespace, model, other) for x in listed)) and _port(
                item.get("ports") or [], flow
            ):
                return True
    return False


def _env_flows(model: SetModel, pod: Pod) -> Iterator[Flow]:
    for name, value in pod.env().items():
        if isinstance(value, dict):
            if name == "DATABASE_URL":
                yield Flow(
                    pod, EXTERNAL, 5432, "TCP", "DATABASE_URL (host in a Secret): PostgreSQL"
                )
            continue
        servers: list[tuple[str, int]] = []
        if name == "KAFKA_BOOTSTRAP_SERVERS":
            split = [s.strip().rpartition(":") for s in str(value).split(",") if s.strip()]
            servers = [(h, int(p or 9092)) for h, _, p in split]
        elif "://" in str(value):
            url = urlsplit(str(value))
            if url.hostname:
                servers = [(url.hostname, url.port or DEFAULT_PORTS.get(url.scheme, 80))]
        for host, port in servers:
            for target, number in resolve_host(model, host, port, pod.namespace):
                yield Flow(pod, target, number, "TCP", f"{name}={value}")


def required_flows(model: SetModel) -> Iterator[Flow]:
    istiod = chart_pod(model, "istiod")
    for pod in all_pods(model):
        if pod.operator in ("helm", "external", "cluster") or not pod.spec:
            continue
        for protocol in ("UDP", "TCP"):
            yield Flow(pod, KUBE_DNS, 53, protocol, "DNS")
        if istiod and is_injected(model, pod):
            yield Flow(pod, istiod, 15012, "TCP", "its sidecar fetches config from istiod (xDS)")
        yield from _env_flows(model, pod)
        if pod.labels.get("strimzi.io/name", "").endswith("-entity-operator"):
            yield Flow(pod, API_SERVER, 443, "TCP", "the entity operator watches KafkaTopics")
    for caller, obj, pod, port, why in _calls(model):
        yield Flow(caller, pod, port, "TCP", f"{why} ({obj.ref})")
    pods = all_pods(model)
    for kafka in model.of_kind("Kafka"):
        brokers = [p for p in pods if p.labels.get("strimzi.io/name") == f"{kafka.name}-kafka"]
        entity = [
            p for p in pods if p.labels.get("strimzi.io/name") == f"{kafka.name}-entity-operator"
        ]
        for source in brokers + entity:
            for target in brokers:
                for port in (9090, 9091) if source in brokers else (9091,):
                    yield Flow(source, target, port, "TCP", f"Kafka internals ({kafka.ref})")
    for es in model.of_kind("Elasticsearch"):
        nodes = [
            p for p in pods if p.labels.get("elasticsearch.k8s.elastic.co/cluster-name") == es.name
        ]
        for source in nodes:
            for target in nodes:
                yield Flow(source, target, 9300, "TCP", f"Elasticsearch transport ({es.ref})")
    for kb in model.of_kind("Kibana"):
        ref = str(dig(kb.obj, "spec", "elasticsearchRef", "name") or "")
        for source in [p for p in pods if p.labels.get("kibana.k8s.elastic.co/name") == kb.name]:
            for target, port in resolve_host(model, f"{ref}-es-http", 9200, kb.namespace or ""):
                yield Flow(source, target, port, "TCP", f"Kibana uses Elasticsearch ({kb.ref})")
    fluent = chart_pod(model, "fluent-bit")
    outputs = (
        str(dig(fluent.release.values, "config", "outputs") or "")
        if fluent and fluent.release
        else ""
    )
    words = outputs.split()
    for i, word in enumerate(words[:-1]):
        if word == "Host" and fluent is not None:
            host = words[i + 1]
            port = next(
                (int(words[j + 1]) for j in range(len(words) - 1) if words[j] == "Port"), 9200
            )
            for target, number in resolve_host(model, host, port, fluent.namespace):
                yield Flow(fluent, target, number, "TCP", "fluent-bit ships logs to Elasticsearch")


@rule("network-policy-allows-flow", "NetworkPolicies allow every flow the architecture needs")
def allows_flow(model: SetModel) -> Iterable[Finding]:
    if not model.of_kind("NetworkPolicy"):
        return
    blocked: dict[tuple[str, str, str], dict[str, Any]] = {}
    for flow in required_flows(model):
        for direction in ("Egress", "Ingress"):
            if _side(model, flow, direction):
                continue
            side = flow.source if direction == "Egress" else flow.target
            key = (flow.source.owner, flow.target.owner, direction)
            entry = blocked.setdefault(key, {"flow": flow, "side": side, "ports": [], "why": []})
            label = f"{flow.port}/{flow.protocol}"
            if label not in entry["ports"]:
                entry["ports"].append(label)
            if flow.why not in entry["why"]:
                entry["why"].append(flow.why)
    for (source, target, direction), entry in blocked.items():
        side = entry["side"]
        yield Finding(
            rule="network-policy-allows-flow",
            severity="error",
            object=side.owner,
            file=side.file or "(not rendered)",
            message=f"no NetworkPolicy in namespace {side.namespace} allows {direction.lower()} "
            f"{source} -> {target} on {', '.join(entry['ports'])}, which it needs: "
            + "; ".join(entry["why"]),
            fix=f"add a{'n' if direction == 'Ingress' else ''} {direction.lower()} rule selecting "
            f"{side.owner} that allows {'to' if direction == 'Egress' else 'from'} "
            f"{target if direction == 'Egress' else source} on those ports",
            source=NETPOL
            + (f"; {STRIMZI_NETPOL}" if "Kafka" in " ".join(entry["why"]) else "")
            + (f"; {ISTIO_PORTS}" if "istiod" in " ".join(entry["why"]) else ""),
        )


def _allows_all(peers: list[dict[str, Any]] | None) -> bool:
    if not peers:
        return True
    for peer in peers:
        cidr = dig(peer, "ipBlock", "cidr")
        if not peer or cidr in ("0.0.0.0/0", "::/0"):
            return True
        if peer.get("namespaceSelector") == {} and not peer.get("podSelector"):
            return True
    return False


@rule("network-policy-too-broad", "no NetworkPolicy rule allows every source or destination")
def too_broad(model: SetModel) -> Iterable[Finding]:
    for policy in model.of_kind("NetworkPolicy"):
        spec = policy.obj.get("spec") or {}
        for key, peers, word in (("ingress", "from", "source"), ("egress", "to", "destination")):
            for index, item in enumerate(spec.get(key) or []):
                if not _allows_all(item.get(peers)):
                    continue
                ports = {
                    int(p["port"])
                    for p in item.get("ports") or []
                    if str(p.get("port", "")).isdigit()
                }
                if key == "egress" and item.get("ports") and ports <= DNS_OR_API_PORTS:
                    continue  # DNS, or the API server (whose address no selector names)
                on = f"on ports {sorted(ports)}" if item.get("ports") else "on every port"
                yield Finding(
                    rule="network-policy-too-broad",
                    severity="warning",
                    object=policy.ref,
                    file=model.where(policy),
                    message=f"{key}[{index}] allows any {word} {on}",
                    fix=f"name the {word}: a podSelector/namespaceSelector, or an ipBlock with the "
                    "address range it has (e.g. the database's CIDR)",
                    source=NETPOL,
                )
