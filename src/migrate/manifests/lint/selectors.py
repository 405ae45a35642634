"""Selectors and ports: every object that points at pods or Services finds them.

A Service, PodDisruptionBudget, NetworkPolicy, PodMonitor or workload whose
selector matches no rendered pod does nothing, silently; a Service, Ingress,
VirtualService or HTTPRoute whose port is not on its target sends traffic
nowhere; a probe on a port the container does not declare fails the pod. Objects
that point at what the set does not hold (a Helm chart's pods, in a namespace a
release installs into, or pods an operator makes, recognised by the operators'
own labels) are left out rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from migrate.manifests.lint import (
    Finding,
    SetModel,
    Workload,
    iter_containers,
    operator_selector,
    rule,
    selector_text,
    selects,
)
from migrate.manifests.lint import error_at as _finding
from migrate.manifests.model import Manifest

K8S_SERVICE = "https://kubernetes.io/docs/concepts/services-networking/service/"
K8S_PROBES = (
    "https://kubernetes.io/docs/tasks/configure-pod-container/"
    "configure-liveness-readiness-startup-probes/"
)
PROMETHEUS_OPERATOR_API = "https://prometheus-operator.dev/docs/api-reference/api/"
STATEFULSET_DOC = (
    "https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#limitations"
)

#: Services the operators make for a rendered custom resource: (group, kind) -> name suffixes
#: (Strimzi: `<cluster>-kafka-bootstrap`, `-kafka-brokers`; ECK: `<name>-es-http`,
#: `-es-transport`, `-es-internal-http`, `<name>-kb-http`)
OPERATOR_SERVICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("kafka.strimzi.io", "Kafka"): ("-kafka-bootstrap", "-kafka-brokers"),
    ("elasticsearch.k8s.elastic.co", "Elasticsearch"): (
        "-es-http",
        "-es-transport",
        "-es-internal-http",
    ),
    ("kibana.k8s.elastic.co", "Kibana"): ("-kb-http",),
}


def _selectors(model: SetModel) -> Iterator[tuple[Manifest, dict[str, Any], str]]:
    """(object, its pod selector, what it is for) for every object that selects pods."""
    for m in model.manifests:
        spec = m.obj.get("spec") or {}
        if m.kind == "Service" and spec.get("selector"):
            yield m, spec["selector"], "its endpoints"
        elif m.kind == "PodDisruptionBudget" and spec.get("selector"):
            yield m, spec["selector"], "the pods it protects"
        elif m.kind == "NetworkPolicy" and spec.get("podSelector"):
            yield m, spec["podSelector"], "the pods it applies to"
        elif m.kind == "PodMonitor" and spec.get("selector") is not None:
            yield m, spec["selector"], "the pods Prometheus scrapes"


@rule("selector-matches-pods", "every pod selector matches the pods of a rendered workload")
def selector_matches_pods(model: SetModel) -> Iterator[Finding]:
    for m, selector, what in _selectors(model):
        if model.outside(m.namespace) or operator_selector(selector):
            continue
        if not model.pods(m.namespace, selector):
            labels = sorted({f"{k}={v}" for w in _in(model, m) for k, v in w.labels.items()})
            yield _finding(
                "selector-matches-pods",
                m,
                f"selector {selector_text(selector)} matches no pod rendered in namespace "
                f"{m.namespace}, so {what} are none"
                + (f" (pod labels there: {', '.join(labels[:8])}...)" if labels else ""),
                "make the selector use labels the workload's pod template carries",
                K8S_SERVICE if m.kind == "Service" else "",
            )
    for w in model.workloads:
        own = (w.manifest.obj.get("spec") or {}).get("selector")
        if w.manifest.kind == "Job" or own is None:
            continue
        if not selects(own, w.labels):
            yield _finding(
                "selector-matches-pods",
                w.manifest,
                f"spec.selector {selector_text(own)} does not match the pod template's "
                "labels (the API server refuses it: `selector` does not match template "
                "`labels`)",
                "give spec.template.metadata.labels every label of spec.selector",
            )
    for m in model.of_kind("ServiceMonitor"):
        chosen = (m.obj.get("spec") or {}).get("selector")
        if model.outside(m.namespace) or chosen is None:
            continue
        if not _services(model, m.namespace, chosen):
            yield _finding(
                "selector-matches-pods",
                m,
                f"selector {selector_text(chosen)} matches no Service rendered in namespace "
                f"{m.namespace}: Prometheus scrapes nothing",
                "make the selector use labels of the Service (metadata.labels) to scrape",
                PROMETHEUS_OPERATOR_API + "#monitoring.coreos.com/v1.ServiceMonitorSpec",
            )


def _in(model: SetModel, m: Manifest) -> list[Workload]:
    return [w for w in model.workloads if w.manifest.namespace == m.namespace]


def _services(model: SetModel, namespace: str | None, selector: Any) -> list[Manifest]:
    return [
        s
        for s in model.of_kind("Service")
        if s.namespace == namespace
        and selects(selector, dict(s.obj.get("metadata", {}).get("labels") or {}))
    ]


def _container_ports(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for _, c in iter_containers(pod) for p in c.get("ports") or []]


def _has_port(ports: list[dict[str, Any]], port: Any) -> bool:
    if isinstance(port, int):
        return any(p.get("containerPort") == port for p in ports)
    return any(p.get("name") == port for p in ports)


@rule("service-target-port", "every Service targetPort is a container port of its pods")
def service_target_port(model: SetModel) -> Iterator[Finding]:
    for m in model.of_kind("Service"):
        spec = m.obj.get("spec") or {}
        selector = spec.get("selector")
        if not selector or model.outside(m.namespace) or operator_selector(selector):
            continue
        for port in spec.get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            if isinstance(target, str) and target.isdigit():
                target = int(target)
            for w in model.pods(m.namespace, selector):
                ports = _container_ports(w.pod)
                if not _has_port(ports, target):
                    declared = ", ".join(
                        f"{p.get('name', '')}:{p.get('containerPort')}" for p in ports
                    )
                    yield _finding(
                        "service-target-port",
                        m,
                        f"port {port.get('name') or port.get('port')}: targetPort {target!r} is "
                        f"not a container port of {w.manifest.ref} (its ports: "
                        f"{declared or 'none'})",
                        "name a containerPort the pods declare (by number or by name)",
                        K8S_SERVICE + "#defining-a-service",
                    )


def _service_index(model: SetModel) -> dict[tuple[str | None, str], Manifest]:
    return {(s.namespace, s.name): s for s in model.of_kind("Service")}


def _operator_service(model: SetModel, namespace: str | None, name: str) -> bool:
    for m in model.manifests:
        suffixes = OPERATOR_SERVICES.get((m.group, m.kind))
        if suffixes and m.namespace == namespace and name in {m.name + s for s in suffixes}:
            return True
    return False


def _service_ports(service: Manifest) -> list[dict[str, Any]]:
    return list((service.obj.get("spec") or {}).get("ports") or [])


def _check_backend(
    model: SetModel,
    rule_id: str,
    m: Manifest,
    namespace: str | None,
    name: str,
    port: Any,
    where: str,
    source: str,
) -> Iterator[Finding]:
    """A reference to Service `namespace/name`, port `port` (number, name or None)."""
    if model.outside(namespace) or _operator_service(model, namespace, name):
        return
    service = _service_index(model).get((namespace, name))
    if service is None:
        if namespace != m.namespace and not any(x.namespace == namespace for x in model.manifests):
            return  # a namespace the set renders nothing into: not ours to judge
        yield _finding(
            rule_id,
            m,
            f"{where} names Service {namespace}/{name}, which is not rendered",
            "name a Service of the set (or render the Service)",
            source,
        )
        return
    if port is None:
        return
    ports = _service_ports(service)
    if isinstance(port, int):
        ok = any(p.get("port") == port for p in ports)
    else:
        ok = any(p.get("name") == port for p in ports)
    if not ok:
        have = ", ".join(f"{p.get('name', '')}:{p.get('port')}" for p in ports)
        yield _finding(
            rule_id,
            m,
            f"{where} names port {port!r} of Service {namespace}/{name}, which has "
            f"ports {have or 'none'}",
            "name a port the Service declares (spec.ports[].port or .name)",
            source,
        )


def _host_service(host: str, namespace: str | None) -> tuple[str | None, str] | None:
    """`svc`, `svc.ns`, `svc.ns.svc[.cluster.local]` -> (namespace, svc); else None."""
    parts = host.split(".")
    if len(parts) == 1:
        return namespace, parts[0]
    if len(parts) == 2:
        return parts[1], parts[0]
    if len(parts) >= 3 and parts[2] == "svc":
        return parts[1], parts[0]
    return None  # an external host, or a ServiceEntry's


@rule(
    "backend-service-port",
    "Ingress, VirtualService and HTTPRoute backends name a rendered Service and one of its ports",
)
def backend_service_port(model: SetModel) -> Iterator[Finding]:
    ingress_doc = "https://kubernetes.io/docs/concepts/services-networking/ingress/"
    vs_doc = "https://istio.io/latest/docs/reference/config/networking/virtual-service/"
    route_doc = "https://gateway-api.sigs.k8s.io/reference/spec/#httpbackendref"
    for m in model.of_kind("Ingress"):
        spec = m.obj.get("spec") or {}
        backends = [("defaultBackend", spec.get("defaultBackend"))]
        for rule_ in spec.get("rules") or []:
            for path in (rule_.get("http") or {}).get("paths") or []:
                backends.append((f"path {path.get('path', '/')}", path.get("backend")))
        for where, backend in backends:
            service = (backend or {}).get("service")
            if not service:
                continue
            port = service.get("port") or {}
            yield from _check_backend(
                model,
                "backend-service-port",
                m,
                m.namespace,
                str(service.get("name")),
                port.get("number", port.get("name")),
                where,
                ingress_doc,
            )
    for m in model.of_kind("VirtualService"):
        spec = m.obj.get("spec") or {}
        for protocol in ("http", "tcp", "tls"):
            for index, route in enumerate(spec.get(protocol) or []):
                for target in route.get("route") or []:
                    destination = target.get("destination") or {}
                    found = _host_service(str(destination.get("host", "")), m.namespace)
                    if found is None:
                        continue
                    yield from _check_backend(
                        model,
                        "backend-service-port",
                        m,
                        found[0],
                        found[1],
                        (destination.get("port") or {}).get("number"),
                        f"{protocol}[{index}] destination {destination.get('host')}",
                        vs_doc,
                    )
    for m in model.of_kind("HTTPRoute", "GRPCRoute", "TCPRoute"):
        for index, route_rule in enumerate((m.obj.get("spec") or {}).get("rules") or []):
            for ref in route_rule.get("backendRefs") or []:
                if ref.get("kind", "Service") != "Service" or ref.get("group", "") != "":
                    continue
                yield from _check_backend(
                    model,
                    "backend-service-port",
                    m,
                    ref.get("namespace", m.namespace),
                    str(ref.get("name")),
                    ref.get("port"),
                    f"rules[{index}] backendRef {ref.get('name')}",
                    route_doc,
                )


@rule("probe-port", "every probe names a port of its container")
def probe_port(model: SetModel) -> Iterator[Finding]:
    for w in model.workloads:
        for _, container in iter_containers(w.pod):
            ports = list(container.get("ports") or [])
            for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
                probe = container.get(kind) or {}
                for handler in ("httpGet", "tcpSocket", "grpc"):
                    if handler not in probe:
                        continue
                    port = probe[handler].get("port")
                    if isinstance(port, str) and port.isdigit():
                        port = int(port)
                    if isinstance(port, int) and not ports:
                        continue  # undeclared ports are allowed; nothing to compare with
                    if not _has_port(ports, port):
                        have = ", ".join(
                            f"{p.get('name', '')}:{p.get('containerPort')}" for p in ports
                        )
                        yield _finding(
                            "probe-port",
                            w.manifest,
                            f"container {container.get('name')}: {kind}.{handler}.port "
                            f"{port!r} is not one of its ports ({have or 'none'})",
                            "name a containerPort of the same container",
                            K8S_PROBES,
                        )


@rule("monitor-endpoint-port", "ServiceMonitor and PodMonitor endpoints name existing ports")
def monitor_endpoint_port(model: SetModel) -> Iterator[Finding]:
    for m in model.of_kind("ServiceMonitor"):
        spec = m.obj.get("spec") or {}
        if model.outside(m.namespace):
            continue
        services = _services(model, m.namespace, spec.get("selector"))
        for index, endpoint in enumerate(spec.get("endpoints") or []):
            port = endpoint.get("port")
            if port is None:
                continue
            for service in services:
                if not any(p.get("name") == port for p in _service_ports(service)):
                    yield _finding(
                        "monitor-endpoint-port",
                        m,
                        f"endpoints[{index}].port {port!r} is not a port name of {service.ref}",
                        "name a port of the Service (spec.ports[].name)",
                        PROMETHEUS_OPERATOR_API + "#monitoring.coreos.com/v1.Endpoint",
                    )
    for m in model.of_kind("PodMonitor"):
        spec = m.obj.get("spec") or {}
        selector = spec.get("selector")
        if model.outside(m.namespace) or operator_selector(selector):
            continue
        for index, endpoint in enumerate(spec.get("podMetricsEndpoints") or []):
            port = endpoint.get("port", endpoint.get("portNumber"))
            if port is None:
                continue
            for w in model.pods(m.namespace, selector):
                ports = _container_ports(w.pod)
                if not _has_port(ports, port):
                    yield _finding(
                        "monitor-endpoint-port",
                        m,
                        f"podMetricsEndpoints[{index}].port {port!r} is not a container port "
                        f"of {w.manifest.ref}",
                        "name a containerPort of the pods (ports[].name)",
                        PROMETHEUS_OPERATOR_API + "#monitoring.coreos.com/v1.PodMetricsEndpoint",
                    )


@rule("statefulset-headless-service", "a StatefulSet's serviceName is a headless Service")
def statefulset_headless_service(model: SetModel) -> Iterator[Finding]:
    for m in model.of_kind("StatefulSet"):
        name = (m.obj.get("spec") or {}).get("serviceName")
        if not name or model.outside(m.namespace):
            continue
        service = model.find("Service", m.namespace, str(name))
        if service is None:
            yield _finding(
                "statefulset-headless-service",
                m,
                f"serviceName {name} names no rendered Service: the pods get no stable "
                "network identity",
                f"render a headless Service {name} (clusterIP: None) selecting the pods",
                STATEFULSET_DOC,
            )
        elif (service.obj.get("spec") or {}).get("clusterIP") != "None":
            yield _finding(
                "statefulset-headless-service",
                m,
                f"serviceName {name} is a Service with a cluster IP, not a headless one: "
                "the pods' DNS names (<pod>.<service>) do not resolve",
                f"set clusterIP: None on Service {name} (add a second, ClusterIP Service "
                "for clients if they need one)",
                STATEFULSET_DOC,
            )
