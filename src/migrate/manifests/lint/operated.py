"""Every pod the rendered set will run, and the pods behind a Service or a host name.

`all_pods` gathers our own workloads' pods (pods.py), the pods the operators make
from what they are given (strimzi.py: `Kafka`/`KafkaNodePool`; eck.py:
`Elasticsearch`/`Kibana`) and the Helm releases' pods, known by their labels
(charts.py). `service_targets` and `resolve_host` say which of them a Service port or
an address (`<svc>.<ns>.svc:<port>`, `<kafka>-kafka-bootstrap`, `<es>-es-http`,
`jaeger-collector`) reaches.

Not a rule module: the rules in podsecurity, mesh, network and wiring import it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from migrate.manifests.lint import SetModel
from migrate.manifests.lint.charts import CHART_PODS, chart_pod, release_pod
from migrate.manifests.lint.eck import ECK_ES_SRC, ECK_KIBANA_SRC, eck_pods
from migrate.manifests.lint.pods import (
    KUBE_DNS,
    Pod,
    dig,
    injected,
    is_injected,
    matches,
    namespace_labels,
    own_pods,
)
from migrate.manifests.lint.strimzi import (
    RESTRICTED_PROVIDERS,
    STRIMZI_PROVIDERS_SRC,
    strimzi_pods,
    strimzi_restricted,
)

if TYPE_CHECKING:
    from migrate.manifests.model import Manifest

#: what the rule modules read from here; the models live in the modules named above
__all__ = [
    "CHART_PODS",
    "ECK_ES_SRC",
    "ECK_KIBANA_SRC",
    "KUBE_DNS",
    "RESTRICTED_PROVIDERS",
    "STRIMZI_PROVIDERS_SRC",
    "Pod",
    "all_pods",
    "chart_pod",
    "dig",
    "eck_pods",
    "injected",
    "is_injected",
    "matches",
    "namespace_labels",
    "own_pods",
    "pods_in",
    "release_pod",
    "resolve_host",
    "service_targets",
    "strimzi_pods",
    "strimzi_restricted",
]


def all_pods(model: SetModel) -> list[Pod]:
    """Ours, then the operators', then the releases' (cached on the model)."""
    cached = model.__dict__.get("_lint_all_pods")
    if cached is None:
        releases = [release_pod(model, r) for r in model.releases]
        cached = (
            own_pods(model)
            + strimzi_pods(model)
            + eck_pods(model)
            + [p for p in releases if p is not None]
        )
        model.__dict__["_lint_all_pods"] = cached
    return list(cached)


def pods_in(model: SetModel, namespace: str, selector: dict[str, Any] | None) -> Iterator[Pod]:
    for pod in all_pods(model):
        if pod.namespace == namespace and pod.operator != "helm" and matches(selector, pod.labels):
            yield pod


# -- Services and hosts -----------------------------------------------------------------------


def service_targets(model: SetModel, service: Manifest, port: Any) -> list[tuple[Pod, int]]:
    """(pod, container port) a Service's `port` (name or number) reaches."""
    spec = service.obj.get("spec") or {}
    selector = spec.get("selector")
    if not selector:
        return []
    ports = spec.get("ports") or []
    chosen = next(
        (p for p in ports if port in (p.get("name"), p.get("port"), str(p.get("port")))),
        ports[0] if len(ports) == 1 and port is None else None,
    )
    if chosen is None:
        return []
    target = chosen.get("targetPort", chosen.get("port"))
    result = []
    for pod in pods_in(model, service.namespace or "default", {"matchLabels": selector}):
        number = pod.port_numbers().get(target) if isinstance(target, str) else int(target)
        if number is not None:
            result.append((pod, number))
    return result


def resolve_host(model: SetModel, host: str, port: int, namespace: str) -> list[tuple[Pod, int]]:
    """The pods behind `host:port` as a pod in `namespace` resolves it: a rendered Service,
    or one an operator or chart makes (`<kafka>-kafka-bootstrap`, `<es>-es-http`,
    `jaeger-collector`)."""
    parts = host.split(".")
    name = parts[0]
    ns = parts[1] if len(parts) > 1 and parts[1] != "svc" else namespace
    service = model.find("Service", ns, name)
    if service is not None:
        return service_targets(model, service, port)
    found = []
    for pod in all_pods(model):
        if pod.namespace != ns:
            continue
        cluster = pod.labels.get("strimzi.io/cluster")
        es = pod.labels.get("elasticsearch.k8s.elastic.co/cluster-name")
        kb = pod.labels.get("kibana.k8s.elastic.co/name")
        instance = pod.labels.get("app.kubernetes.io/instance", "")
        if (
            (
                cluster
                and name in (f"{cluster}-kafka-bootstrap", f"{cluster}-kafka-brokers")
                and pod.labels.get("strimzi.io/name") == f"{cluster}-kafka"
            )
            or (es and name == f"{es}-es-http")
            or (kb and name == f"{kb}-kb-http")
            or (pod.operator == "helm" and instance and name.startswith(instance))
        ):
            found.append((pod, port))
    return found
