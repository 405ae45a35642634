"""Probes, scraping, tracing and network flows of the rendered example, as a set.

What the runtime serves (DESIGN 3.9: /healthz, /readyz, /metrics on the
`http` port) is what the probes ask and Prometheus scrapes; the OTLP
endpoint is the Jaeger collector phase 1 installs; and the NetworkPolicies,
read as the cluster reads them, let each flow of the architecture through
and keep the others out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from migrate.config import Monitoring
from migrate.manifests.helm import (
    JAEGER_OTLP_HTTP_PORT,
    jaeger_collector_service,
    jaeger_otlp_endpoint,
)
from migrate.manifests.model import HelmRelease, Manifest, PhaseManifests
from migrate.manifests.render import render_project
from migrate.manifests.runtime_env import containers
from migrate.project import open_context
from tests.unit.test_lint_wiring import rule_findings
from tests.unit.test_manifests_runtime_env import configure


def _render(project: Path) -> tuple[list[Manifest], list[HelmRelease]]:
    return _flat(render_project(open_context(project)))


def _flat(phases: list[PhaseManifests]) -> tuple[list[Manifest], list[HelmRelease]]:
    return [m for p in phases for m in p.manifests], [r for p in phases for r in p.releases]


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector, as the API server reads it."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _pod_labels(manifest: Manifest) -> dict[str, str]:
    labels: dict[str, str] = manifest.obj["spec"]["template"]["metadata"]["labels"]
    return labels


def _http_port(manifest: Manifest) -> int:
    (container,) = manifest.obj["spec"]["template"]["spec"]["containers"]
    (port,) = [p for p in container["ports"] if p["name"] == "http"]
    return int(port["containerPort"])


def test_probes_ask_what_the_runtime_serves(example_render: list[PhaseManifests]) -> None:
    manifests, _ = _flat(example_render)
    found = containers(manifests)
    assert len(found) == 19
    for container in found:
        (spec,) = [
            c
            for c in container.manifest.obj["spec"]["template"]["spec"]["containers"]
            if c["name"] == container.name
        ]
        assert spec["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert spec["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert spec["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    # probed paths are served, on the port the runtime listens on: lint rules
    rules = ("runtime-path-served", "runtime-port-served", "probe-port")
    assert rule_findings(example_render, *rules) == []


def test_every_scraped_path_is_metrics_on_the_http_port(
    example_render: list[PhaseManifests],
) -> None:
    manifests, _ = _flat(example_render)
    workloads = [c.manifest for c in containers(manifests)]
    services = {m.name: m for m in manifests if m.kind == "Service"}
    scraped: set[str] = set()
    # scraped paths and ports exist and are the runtime's: lint rules over the set
    rules = ("runtime-path-served", "runtime-port-served", "monitor-endpoint-port")
    assert rule_findings(example_render, *rules) == []
    for workload in workloads:
        annotations = workload.obj["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
    for monitor in (m for m in manifests if m.kind in ("ServiceMonitor", "PodMonitor")):
        spec = monitor.obj["spec"]
        endpoints = spec.get("endpoints") or spec["podMetricsEndpoints"]
        assert [(e["path"], e["port"]) for e in endpoints] == [("/metrics", "http")]
        selector = spec["selector"]
        if monitor.kind == "ServiceMonitor":
            (service,) = [
                s for s in services.values() if _selects(selector, s.obj["metadata"]["labels"])
            ]
            (port,) = [p for p in service.obj["spec"]["ports"] if p["name"] == "http"]
            assert port["targetPort"] == "http"
            selector = {"matchLabels": service.obj["spec"]["selector"]}
        pods = [w for w in workloads if _selects(selector, _pod_labels(w))]
        assert pods, monitor.ref
        scraped |= {w.name for w in pods}
    # everything that serves or consumes is scraped by the operator, workers included;
    # the idle blue-green track (green, on a first deployment) takes no traffic
    assert scraped == {w.name for w in workloads if not w.name.endswith("-green")}


def test_the_otlp_endpoint_is_the_jaeger_collector_phase_1_installs(
    example_render: list[PhaseManifests],
) -> None:
    manifests, releases = _flat(example_render)
    (jaeger,) = [r for r in releases if r.chart == "jaeger"]
    assert jaeger.phase == 1 and jaeger.name == "jaeger" and jaeger.namespace == "monitoring"
    # the all-in-one pod (COLLECTOR_OTLP_ENABLED=true in chart 3.3.1) is the collector:
    # the chart names its Service <fullname>-collector, with otlp-http on 4318
    assert jaeger.values["allInOne"]["enabled"] is True
    assert jaeger.values["collector"]["enabled"] is False
    assert jaeger.values["allInOne"]["service"]["collector"]["otlp"]["http"]["name"] == "otlp-http"
    assert jaeger_collector_service(jaeger.name) == "jaeger-collector"
    assert jaeger_collector_service("tracing") == "tracing-jaeger-collector"
    expected = f"http://jaeger-collector.{jaeger.namespace}.svc:{JAEGER_OTLP_HTTP_PORT}"
    assert (
        jaeger_otlp_endpoint(jaeger.namespace)
        == expected
        == "http://jaeger-collector.monitoring.svc:4318"
    )
    assert Monitoring().otlp_endpoint == expected  # the config's default
    for container in containers(manifests):
        assert container.env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == expected
    # and it reaches the collector's pods: lint rule runtime-address-rendered
    assert rule_findings(example_render, "runtime-address-rendered") == []


# --- NetworkPolicies, evaluated -----------------------------------------------------


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str | None  # None: outside the cluster (PostgreSQL may be)
    labels: dict[str, str] = field(default_factory=dict, hash=False)


def _peer(peer: dict[str, Any], pod: Pod, home: str) -> bool:
    if "ipBlock" in peer:
        return pod.namespace is None
    if pod.namespace is None:
        return False
    if "namespaceSelector" in peer:
        namespace_labels = {"kubernetes.io/metadata.name": pod.namespace}
        if not _selects(peer["namespaceSelector"], namespace_labels):
            return False
    elif pod.namespace != home:
        return False
    return _selects(peer.get("podSelector", {}), pod.labels)


def _rule(rule: dict[str, Any], direction: str, pod: Pod, port: int, home: str) -> bool:
    peers = rule.get(direction)
    if peers and not any(_peer(p, pod, home) for p in peers):
        return False
    ports = rule.get("ports")
    return not ports or any(p.get("port") == port for p in ports)


def _side(policies: list[Manifest], me: Pod, other: Pod, port: int, kind: str) -> bool:
    """Egress of `me` to `other` (kind Egress), or ingress of `me` from `other`."""
    relevant = [
        p
        for p in policies
        if p.namespace == me.namespace
        and kind in p.obj["spec"]["policyTypes"]
        and _selects(p.obj["spec"]["podSelector"], me.labels)
    ]
    if not relevant or me.namespace is None:
        return True  # not isolated
    direction, rules = ("to", "egress") if kind == "Egress" else ("from", "ingress")
    return any(
        _rule(rule, direction, other, port, str(me.namespace))
        for p in relevant
        for rule in p.obj["spec"].get(rules, [])
    )


def allowed(policies: list[Manifest], source: Pod, target: Pod, port: int) -> bool:
    return _side(policies, source, target, port, "Egress") and _side(
        policies, target, source, port, "Ingress"
    )


@pytest.mark.parametrize("queue", ["kafka", "redis"])
def test_network_policies_let_the_architecture_talk_and_nothing_else(
    project: Path, queue: str
) -> None:
    configure(project, queue=queue)
    phases = render_project(open_context(project))
    # every flow the architecture needs passes: lint rule network-policy-allows-flow; what
    # must NOT pass below is this architecture's, not a property of every set
    assert rule_findings(phases, "network-policy-allows-flow") == []
    manifests, _ = _flat(phases)
    policies = [m for m in manifests if m.kind == "NetworkPolicy"]
    assert any(p.name == "default-deny" for p in policies)
    pods = {
        m.name: Pod(m.name, m.namespace, _pod_labels(m))
        for m in manifests
        if m.kind in ("Deployment", "StatefulSet")
    }
    worker, orchestrator = pods["planner-worker"], pods["project-orchestrator"]
    service = pods["planner-blue"]
    cache = pods["project-cache"]
    # pods of the Strimzi cluster carry its label; the collector runs in `monitoring`
    bus, bus_port = (
        (pods["project-queue"], 6379)
        if queue == "redis"
        else (Pod("broker", "project", {"strimzi.io/cluster": "project-events"}), 9092)
    )
    collector = Pod("jaeger", "monitoring", {"app.kubernetes.io/name": "jaeger"})
    database = Pod("postgres", None)
    keda = Pod("keda-operator", "keda", {"app": "keda-operator"})
    prometheus = Pod("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"})
    nginx = Pod("controller", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})

    for pod in (worker, orchestrator):
        assert allowed(policies, pod, bus, bus_port), pod.name
    assert allowed(policies, keda, bus, bus_port)  # KEDA reads the consumer lag
    assert not allowed(policies, service, bus, bus_port)  # a plugin service uses no bus
    # the queue's Redis keeps the idempotency keys with either bus
    for pod in (worker, orchestrator):
        assert allowed(policies, pod, pods["project-queue"], 6379), pod.name
    assert not allowed(policies, service, pods["project-queue"], 6379)
    assert allowed(policies, orchestrator, database, 5432)
    assert not allowed(policies, worker, database, 5432)
    assert not allowed(policies, service, database, 5432)
    for pod in (worker, orchestrator, service):
        assert allowed(policies, pod, collector, 4318), pod.name
        assert allowed(policies, prometheus, pod, 8080), pod.name
        assert not allowed(policies, pod, collector, 9200), pod.name
    for pod in (worker, service):
        assert allowed(policies, pod, cache, 6379), pod.name
    assert allowed(policies, nginx, service, 8080)
    assert not allowed(policies, nginx, worker, 8080)
    # the orchestrator drives plugins through the bus, not over HTTP
    assert not allowed(policies, orchestrator, service, 8080)
