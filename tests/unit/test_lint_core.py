"""The whole-set checks (migrate.manifests.lint): selectors, ports, scaling, quota, runtime.

One test per finding kind: a small hand-made set that is broken in exactly one
way must produce the finding, and the same set fixed must not. The sets are
built from dicts, as the renderer would have parsed them.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from migrate import api
from migrate.cli.app import app
from migrate.errors import UserError
from migrate.manifests import lint
from migrate.manifests.lint import Finding, SetModel, selects
from migrate.manifests.lint.quota import QuantityError, pod_groups, quantity
from migrate.manifests.lint.runtime import registry_host
from migrate.manifests.model import HelmRelease, Manifest, PhaseManifests, TaskManifests

NS = "app"
#: the rules of this file's modules; the others (podsecurity, mesh, network) have their own
MINE = ("selectors", "scaling", "quota", "runtime")
lint._load_rules()
OTHER_RULES = [
    r.id for r in lint.RULES.values() if r.check.__module__.rsplit(".", 1)[-1] not in MINE
]


# --- building sets ---------------------------------------------------------------------


def obj(kind: str, name: str, spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    api_versions = {
        "Deployment": "apps/v1",
        "StatefulSet": "apps/v1",
        "Service": "v1",
        "Namespace": "v1",
        "ResourceQuota": "v1",
        "LimitRange": "v1",
        "Ingress": "networking.k8s.io/v1",
        "NetworkPolicy": "networking.k8s.io/v1",
        "PodDisruptionBudget": "policy/v1",
        "HorizontalPodAutoscaler": "autoscaling/v2",
        "ScaledObject": "keda.sh/v1alpha1",
        "KafkaTopic": "kafka.strimzi.io/v1beta2",
        "Kafka": "kafka.strimzi.io/v1beta2",
        "KafkaNodePool": "kafka.strimzi.io/v1beta2",
        "VirtualService": "networking.istio.io/v1",
        "HTTPRoute": "gateway.networking.k8s.io/v1",
        "ServiceMonitor": "monitoring.coreos.com/v1",
        "PodMonitor": "monitoring.coreos.com/v1",
    }
    meta = {"name": name, **metadata}
    if kind != "Namespace":
        meta.setdefault("namespace", NS)
    return {"apiVersion": api_versions[kind], "kind": kind, "metadata": meta, "spec": spec}


def manifest(document: dict[str, Any], phase: int = 2) -> Manifest:
    return Manifest(
        phase=phase,
        task="t",
        component="c",
        template="x.yaml.j2",
        obj=copy.deepcopy(document),
        app_namespace=NS,
    )


def deployment(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    replicas: int = 1,
    container: dict[str, Any] | None = None,
    ours: bool = False,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    labels = dict(labels or {"app.kubernetes.io/name": name})
    if ours:
        labels |= {
            "app.kubernetes.io/managed-by": "migrate",
            "app.kubernetes.io/component": "plugin",
        }
    main = container or {
        "name": "main",
        "image": "registry.example.com/acme/x:1",
        "ports": [{"name": "http", "containerPort": 8080}],
    }
    return obj(
        "Deployment",
        name,
        {
            "replicas": replicas,
            "selector": {
                "matchLabels": {"app.kubernetes.io/name": labels["app.kubernetes.io/name"]}
            },
            "template": {
                "metadata": {"labels": labels, "annotations": annotations or {}},
                "spec": {"containers": [main]},
            },
        },
    )


def service(
    name: str, selector: dict[str, str], target: Any = "http", **spec: Any
) -> dict[str, Any]:
    return obj(
        "Service",
        name,
        {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": target}]}
        | spec,
        labels={"app.kubernetes.io/name": name},
    )


def findings(
    *documents: dict[str, Any], releases: list[HelmRelease] | None = None
) -> list[Finding]:
    model_set = [manifest(d) for d in documents]
    phase = PhaseManifests(
        phase=2,
        tasks=(
            TaskManifests(
                phase=2,
                task="t",
                components=("c",),
                manifests=tuple(model_set),
                releases=tuple(releases or ()),
            ),
        ),
    )
    return lint.check([phase], skip=OTHER_RULES).findings


def rules_of(found: list[Finding]) -> set[str]:
    return {f.rule for f in found}


def of_rule(found: list[Finding], rule_id: str) -> list[Finding]:
    return [f for f in found if f.rule == rule_id]


# --- selectors -------------------------------------------------------------------------


def test_selects_reads_label_selectors_as_the_api_server_does() -> None:
    labels = {"a": "1", "b": "2"}
    assert selects({"a": "1"}, labels) and not selects({"a": "2"}, labels)
    assert selects({"matchLabels": {"b": "2"}}, labels)
    assert selects({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, labels)
    assert not selects({"matchExpressions": [{"key": "c", "operator": "Exists"}]}, labels)
    assert selects({"matchExpressions": [{"key": "c", "operator": "DoesNotExist"}]}, labels)
    assert not selects(
        {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, labels
    )
    assert selects({}, labels)


def test_a_selector_that_matches_nothing() -> None:
    web = deployment("web")
    broken = service("web", {"app.kubernetes.io/name": "webb"})
    found = of_rule(findings(web, broken), "selector-matches-pods")
    assert len(found) == 1
    assert found[0].object == "Service app/web" and found[0].file == "phase-2/service-web.yaml"
    assert "app.kubernetes.io/name=webb matches no pod" in found[0].message
    assert not of_rule(
        findings(web, service("web", {"app.kubernetes.io/name": "web"})), "selector-matches-pods"
    )

    pdb = obj(
        "PodDisruptionBudget", "web", {"maxUnavailable": 1, "selector": {"matchLabels": {"x": "y"}}}
    )
    policy = obj("NetworkPolicy", "web", {"podSelector": {"matchLabels": {"x": "y"}}})
    everything = obj("NetworkPolicy", "deny", {"podSelector": {}})
    found = of_rule(findings(web, pdb, policy, everything), "selector-matches-pods")
    assert {f.object for f in found} == {"PodDisruptionBudget app/web", "NetworkPolicy app/web"}

    own = deployment("own")
    own["spec"]["selector"] = {"matchLabels": {"app.kubernetes.io/name": "other"}}
    (mismatch,) = of_rule(findings(own), "selector-matches-pods")
    assert "does not match the pod template's labels" in mismatch.message


def test_selectors_on_pods_outside_the_set_are_not_judged() -> None:
    kafka = service("events", {"strimzi.io/cluster": "events"})
    monitor_ns = service("grafana", {"app": "grafana"})
    monitor_ns["metadata"]["namespace"] = "monitoring"
    release = HelmRelease(
        name="kps",
        chart="kube-prometheus-stack",
        version="1",
        repository="r",
        namespace="monitoring",
        component="monitoring",
    )
    assert not findings(kafka, monitor_ns, releases=[release])


def test_a_service_monitor_selects_services() -> None:
    web, svc = deployment("web"), service("web", {"app.kubernetes.io/name": "web"})
    monitor = obj(
        "ServiceMonitor",
        "web",
        {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "nope"}},
            "endpoints": [{"port": "http"}],
        },
    )
    assert "selector-matches-pods" in rules_of(findings(web, svc, monitor))
    monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] = "web"
    assert not findings(web, svc, monitor)


# --- ports -----------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["metrics", 9090, "9090"])
def test_a_service_target_port_the_pods_do_not_have(target: Any) -> None:
    web = deployment("web")
    (found,) = findings(web, service("web", {"app.kubernetes.io/name": "web"}, target))
    assert found.rule == "service-target-port" and "http:8080" in found.message
    assert not findings(web, service("web", {"app.kubernetes.io/name": "web"}, "http"))
    assert not findings(web, service("web", {"app.kubernetes.io/name": "web"}, 8080))


def test_an_ingress_backend_port_the_service_does_not_have() -> None:
    web, svc = deployment("web"), service("web", {"app.kubernetes.io/name": "web"})

    def ingress(name: str, port: dict[str, Any]) -> dict[str, Any]:
        backend = {"service": {"name": name, "port": port}}
        return obj(
            "Ingress",
            "in",
            {
                "rules": [
                    {"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}
                ]
            },
        )

    (found,) = findings(web, svc, ingress("web", {"number": 8080}))
    assert found.rule == "backend-service-port" and "port 8080 of Service app/web" in found.message
    (missing,) = findings(web, svc, ingress("wbe", {"name": "http"}))
    assert "Service app/wbe, which is not rendered" in missing.message
    assert not findings(web, svc, ingress("web", {"name": "http"}))
    assert not findings(web, svc, ingress("web", {"number": 80}))


def test_virtual_service_and_http_route_destinations() -> None:
    web, svc = deployment("web"), service("web", {"app.kubernetes.io/name": "web"})

    def virtual(host: str, port: int) -> dict[str, Any]:
        route = {"route": [{"destination": {"host": host, "port": {"number": port}}}]}
        return obj("VirtualService", "web", {"hosts": [host], "http": [route]})

    (found,) = findings(web, svc, virtual("web.app.svc.cluster.local", 8080))
    assert found.rule == "backend-service-port" and found.object == "VirtualService app/web"
    assert not findings(web, svc, virtual("web.app.svc.cluster.local", 80))
    assert not findings(web, svc, virtual("api.example.com", 443))  # not a Service of the set

    def route(name: str, port: int) -> dict[str, Any]:
        return obj("HTTPRoute", "web", {"rules": [{"backendRefs": [{"name": name, "port": port}]}]})

    assert rules_of(findings(web, svc, route("web", 81))) == {"backend-service-port"}
    assert not findings(web, svc, route("web", 80))


def test_a_probe_on_a_port_the_container_does_not_declare() -> None:
    container = {
        "name": "main",
        "image": "registry.example.com/acme/x:1",
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "metrics"}},
        "livenessProbe": {"tcpSocket": {"port": 9000}},
    }
    found = findings(deployment("web", container=container))
    assert [f.rule for f in found] == ["probe-port", "probe-port"]
    assert any("readinessProbe.httpGet.port 'metrics'" in f.message for f in found)
    container["readinessProbe"]["httpGet"]["port"] = "http"
    container["livenessProbe"]["tcpSocket"]["port"] = 8080
    assert not findings(deployment("web", container=container))


def test_monitor_endpoints_name_existing_ports() -> None:
    web, svc = deployment("web"), service("web", {"app.kubernetes.io/name": "web"})
    monitor = obj(
        "ServiceMonitor",
        "web",
        {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
            "endpoints": [{"port": "metrics"}],
        },
    )
    pods = obj(
        "PodMonitor",
        "web",
        {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
            "podMetricsEndpoints": [{"port": "metrics"}],
        },
    )
    found = of_rule(findings(web, svc, monitor, pods), "monitor-endpoint-port")
    assert {f.object for f in found} == {"ServiceMonitor app/web", "PodMonitor app/web"}
    monitor["spec"]["endpoints"][0]["port"] = "http"
    pods["spec"]["podMetricsEndpoints"][0]["port"] = "http"
    assert not findings(web, svc, monitor, pods)


def test_a_statefulset_governed_by_a_service_with_a_cluster_ip() -> None:
    cache = deployment("cache")
    cache["kind"] = "StatefulSet"
    cache["spec"]["serviceName"] = "cache"
    svc = service("cache", {"app.kubernetes.io/name": "cache"})
    (found,) = findings(cache, svc)
    assert found.rule == "statefulset-headless-service" and "not a headless one" in found.message
    svc["spec"]["clusterIP"] = "None"
    assert not findings(cache, svc)
    (absent,) = findings(cache)
    assert "names no rendered Service" in absent.message


# --- scaling ---------------------------------------------------------------------------


def hpa(target: str, low: int = 2, high: int = 5) -> dict[str, Any]:
    return obj(
        "HorizontalPodAutoscaler",
        "web",
        {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": low,
            "maxReplicas": high,
        },
    )


def budget(name: str) -> dict[str, Any]:
    return obj(
        "PodDisruptionBudget",
        name,
        {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": name}}},
    )


def test_an_autoscaler_whose_target_is_not_rendered() -> None:
    web = deployment("web")
    (found,) = findings(web, hpa("web-blue"), budget("web"))
    assert found.rule == "autoscaler-target-exists" and "Deployment web-blue" in found.message
    assert not findings(web, hpa("web"), budget("web"))


def scaled(maximum: int, topic: str = "task.created") -> dict[str, Any]:
    return obj(
        "ScaledObject",
        "worker",
        {
            "scaleTargetRef": {"name": "worker"},
            "minReplicaCount": 1,
            "maxReplicaCount": maximum,
            "triggers": [
                {"type": "kafka", "metadata": {"topic": topic, "consumerGroup": "worker"}}
            ],
        },
    )


def topic(name: str, partitions: int) -> dict[str, Any]:
    return obj(
        "KafkaTopic",
        name.replace(".", "-"),
        {"topicName": name, "partitions": partitions, "replicas": 3},
    )


def test_a_kafka_scaled_maximum_above_the_partitions() -> None:
    worker = deployment("worker")
    (found,) = findings(worker, scaled(4), topic("task.created", 3))
    assert found.rule == "scaler-max-partitions"
    assert "maxReplicaCount 4 exceeds the 3 partition(s) of task.created" in found.message
    assert "keda.sh" in found.source
    assert not findings(worker, scaled(3), topic("task.created", 3))
    (missing,) = findings(worker, scaled(3, "plan.ready"), topic("task.created", 3))
    assert missing.rule == "kafka-topic-exists"
    assert not findings(worker, scaled(3))  # no topics in the set: made elsewhere, no verdict


def test_two_autoscalers_on_one_workload() -> None:
    worker = deployment("worker")
    on_worker = hpa("worker")
    on_worker["metadata"]["name"] = "worker-hpa"
    found = findings(worker, scaled(3), on_worker, budget("worker"))
    assert rules_of(found) == {"one-autoscaler-per-workload"}
    assert "both scale Deployment worker" in found[0].message


def test_a_replicated_deployment_without_a_disruption_budget_is_a_warning() -> None:
    web = deployment("web", replicas=2)
    (found,) = findings(web)
    assert (found.rule, found.severity) == ("replicated-has-pdb", "warning")
    assert not findings(web, budget("web"))
    assert not findings(deployment("web", replicas=1))
    scaled_up = findings(deployment("web"), hpa("web", low=2))  # the autoscaler's minimum
    assert rules_of(scaled_up) == {"replicated-has-pdb"}


# --- quota -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100m", Decimal("0.1")),
        ("1.5", Decimal("1.5")),
        (2, Decimal(2)),
        ("512Mi", Decimal(512 * 2**20)),
        ("1Gi", Decimal(2**30)),
        ("1.5Gi", Decimal(3 * 2**29)),
        ("2Ki", Decimal(2048)),
        ("1k", Decimal(1000)),
        ("2M", Decimal(2_000_000)),
        ("1G", Decimal(10**9)),
        ("1e3", Decimal(1000)),
        (".5", Decimal("0.5")),
    ],
)
def test_quantities_parse_as_kubernetes_reads_them(text: Any, value: Decimal) -> None:
    assert quantity(text) == value


@pytest.mark.parametrize("text", ["", "1.2.3", "12Xi", "abc", True])
def test_a_bad_quantity_is_refused(text: Any) -> None:
    with pytest.raises(QuantityError):
        quantity(text)


def namespace(injection: bool) -> dict[str, Any]:
    labels = {"istio-injection": "enabled"} if injection else {}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": labels}}


def quota(**hard: str) -> dict[str, Any]:
    return obj(
        "ResourceQuota", "quota", {"hard": {k.replace("_", "."): v for k, v in hard.items()}}
    )


def test_a_quota_too_small_for_the_maxima_with_sidecars_counted() -> None:
    container = {
        "name": "main",
        "image": "registry.example.com/acme/x:1",
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
    }
    web = deployment("web", container=container)
    scaler = hpa("web", low=1, high=4)
    # 4 pods x (100m + the sidecar's 100m) = 800m of requests; limits 4 x (500m + 2000m) = 10
    fits = quota(requests_cpu="800m", limits_cpu="10", pods="4")
    assert not findings(namespace(True), web, scaler, fits)
    tight = quota(requests_cpu="799m", limits_cpu="9", pods="3")
    found = findings(namespace(True), web, scaler, tight)
    assert [f.rule for f in found] == ["quota-fits"] * 3
    by_key = {f.message.split(" is ")[0]: f for f in found}
    assert "need 0.8 (4 pods, 4 with an Istio sidecar" in by_key["hard requests.cpu"].message
    assert "need 10 " in by_key["hard limits.cpu"].message
    assert "need 4 " in by_key["hard pods"].message
    assert "istio-discovery/values.yaml" in found[0].source
    # no injection: the containers alone fit
    assert not findings(namespace(False), web, scaler, quota(requests_cpu="400m", limits_cpu="2"))
    # opted out of injection
    out = deployment("web", container=container, annotations={"sidecar.istio.io/inject": "false"})
    assert not findings(namespace(True), out, scaler, quota(requests_cpu="400m", limits_cpu="2"))


def test_sidecar_resources_come_from_annotations_then_istiod_values() -> None:
    container = {
        "name": "main",
        "image": "registry.example.com/acme/x:1",
        "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "100m"}},
    }
    limits = obj(
        "LimitRange",
        "limits",
        {
            "limits": [
                {"type": "Container", "default": {"cpu": "300m"}, "defaultRequest": {"cpu": "50m"}}
            ]
        },
    )
    annotated = deployment(
        "web", container=container, annotations={"sidecar.istio.io/proxyCPU": "20m"}
    )
    # requests: 100m + 20m; limits: 100m + the LimitRange default 300m (no proxyCPULimit)
    model = SetModel([manifest(d) for d in (namespace(True), annotated, limits)])
    (group,) = pod_groups(model, NS)
    assert group.cost["requests.cpu"] == Decimal("0.12") and group.cost["limits.cpu"] == Decimal(
        "0.4"
    )
    istiod = HelmRelease(
        name="istiod",
        chart="istiod",
        version="1",
        repository="r",
        namespace="istio-system",
        component="mesh",
        values={
            "global": {"proxy": {"resources": {"requests": {"cpu": "10m"}, "limits": {"cpu": "1"}}}}
        },
    )
    plain = deployment("web", container=container)
    model = SetModel([manifest(d) for d in (namespace(True), plain, limits)], [istiod])
    (group,) = pod_groups(model, NS)
    assert group.cost["requests.cpu"] == Decimal("0.11") and group.cost["limits.cpu"] == Decimal(
        "1.1"
    )


def test_the_quota_counts_the_pods_operators_make() -> None:
    cluster = obj(
        "Kafka",
        "events",
        {"kafka": {"listeners": []}, "entityOperator": {"topicOperator": {}, "userOperator": {}}},
    )
    pool = obj(
        "KafkaNodePool",
        "pool",
        {
            "replicas": 3,
            "roles": ["broker"],
            "resources": {
                "requests": {"cpu": "1", "memory": "1Gi"},
                "limits": {"cpu": "1", "memory": "1Gi"},
            },
        },
        labels={"strimzi.io/cluster": "events"},
    )
    limits = obj(
        "LimitRange",
        "limits",
        {
            "limits": [
                {
                    "type": "Container",
                    "default": {"cpu": "500m", "memory": "512Mi"},
                    "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                }
            ]
        },
    )
    # brokers 3 x 1 + entity operator 2 x 100m (LimitRange defaults) = 3.2 requests.cpu; 4 pods
    assert not findings(
        namespace(False), cluster, pool, limits, quota(requests_cpu="3.2", pods="4")
    )
    (found,) = findings(namespace(False), cluster, pool, limits, quota(requests_cpu="3", pods="4"))
    assert "need 3.2 (4 pods" in found.message and "Strimzi broker pods" in found.message


def test_a_pod_without_limits_under_a_limits_quota_is_refused() -> None:
    container = {
        "name": "main",
        "image": "registry.example.com/acme/x:1",
        "resources": {"requests": {"cpu": "100m"}},
    }
    (found,) = findings(deployment("web", container=container), quota(limits_cpu="10"))
    assert found.rule == "quota-fits" and "sets no limits.cpu of container main" in found.message


# --- the runtime contract --------------------------------------------------------------


def ours(**container: Any) -> dict[str, Any]:
    main = {
        "name": "plugin",
        "image": "registry.example.com/acme/planner:abc",
        "ports": [{"name": "http", "containerPort": 8080}],
        "env": [{"name": "MIGRATE_ROLE", "value": "service"}, {"name": "PORT", "value": "8080"}],
    } | container
    return deployment(
        "planner", container=main, ours=True, annotations={"prometheus.io/path": "/metrics"}
    )


def test_a_scrape_path_the_runtime_does_not_serve() -> None:
    planner = ours()
    monitor = obj(
        "PodMonitor",
        "planner",
        {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "planner"}},
            "podMetricsEndpoints": [{"port": "http", "path": "/prometheus"}],
        },
    )
    (found,) = findings(planner, monitor)
    assert found.rule == "runtime-path-served" and "scrapes /prometheus" in found.message
    monitor["spec"]["podMetricsEndpoints"][0]["path"] = "/metrics"
    assert not findings(planner, monitor)
    annotated = ours()
    annotated["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"] = "/stats"
    assert rules_of(findings(annotated)) == {"runtime-path-served"}
    probed = ours(livenessProbe={"httpGet": {"path": "/health", "port": "http"}})
    (probe,) = findings(probed)
    assert "livenessProbe GETs /health" in probe.message
    assert not findings(ours(livenessProbe={"httpGet": {"path": "/healthz", "port": "http"}}))


def test_an_env_var_the_runtime_does_not_read() -> None:
    env = [
        {"name": "MIGRATE_ROLE", "value": "service"},
        {"name": "MIGRATE_QUEUE", "value": "kafka"},
    ]
    (found,) = findings(ours(env=env))
    assert found.rule == "runtime-env-read" and "sets MIGRATE_QUEUE" in found.message
    assert found.source == "migrate.runtime.settings.VARIABLES"
    worker_only = [
        {"name": "MIGRATE_ROLE", "value": "service"},
        {"name": "MIGRATE_CONSUMES", "value": "a"},
    ]
    (role,) = findings(ours(env=worker_only))
    assert "only role(s) worker read" in role.message
    assert not findings(ours())
    # not ours: a Redis container may set what it likes
    redis = deployment(
        "redis",
        container={
            "name": "redis",
            "image": "docker.io/library/redis:7",
            "env": [{"name": "X", "value": "1"}],
        },
    )
    assert not findings(redis)


def test_a_container_running_the_runtime_by_its_command_is_ours() -> None:
    container = {
        "name": "job",
        "image": "registry.example.com/acme/x:1",
        "command": ["python", "-m", "migrate_runtime"],
        "env": [{"name": "NOPE", "value": "1"}],
    }
    assert rules_of(findings(deployment("job", container=container))) == {"runtime-env-read"}


@pytest.mark.parametrize(
    ("image", "host"),
    [
        ("acme/planner:abc", None),
        ("planner", None),
        ("registry.example.com/acme/planner:abc", "registry.example.com"),
        ("127.0.0.1:5000/acme/planner:abc", "127.0.0.1:5000"),
        ("localhost/planner", "localhost"),
    ],
)
def test_registry_host(image: str, host: str | None) -> None:
    assert registry_host(image) == host


def test_an_image_of_ours_without_a_registry() -> None:
    (found,) = findings(ours(image="acme/planner:abc"))
    assert (found.rule, found.severity) == ("image-pullable", "warning")
    assert "(e.g. acme/planner:abc)" in found.message and "from docker.io" in found.message
    assert found.fix.startswith("set target.registry in migrate.yaml and run `migrate images")
    assert not findings(ours(image="127.0.0.1:5000/acme/planner:abc"))
    other = deployment("redis", container={"name": "redis", "image": "redis:7"})
    assert not findings(other)  # not ours: Docker Hub is where it lives


# --- the framework ---------------------------------------------------------------------


def test_skip_check_and_phase_filter_and_minimum_severity() -> None:
    web = deployment("web", replicas=2)
    broken = service("web", {"app.kubernetes.io/name": "nope"})
    phase = PhaseManifests(
        phase=2,
        tasks=(TaskManifests(2, "t", ("c",), (manifest(web), manifest(broken)), ()),),
    )
    report = lint.check([phase], skip=OTHER_RULES)
    assert report.fails("error") and report.fails("warning") and not report.fails("none")
    skipped = lint.check([phase], skip=[*OTHER_RULES, "selector-matches-pods"])
    assert not skipped.fails("error") and skipped.fails("warning")
    assert "selector-matches-pods" in skipped.skipped
    assert not report.for_phases([1]).findings and report.for_phases([2]).findings
    with pytest.raises(UserError, match="no such rule"):
        lint.check([phase], skip=["no-such-rule"])
    with pytest.raises(lint.LintFailed) as caught:
        lint.raise_for(report, "error")
    assert "phase-2/service-web.yaml" in caught.value.render()


# --- the example application and the CLI ----------------------------------------------


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def all_rules_but(*keep: str) -> list[str]:
    lint._load_rules()
    return [arg for r in sorted(lint.RULES) if r not in keep for arg in ("--skip-check", r)]


def set_registry(project: Path, registry: str) -> None:
    config_file = project / "migrate.yaml"
    config = yaml.safe_load(config_file.read_text())
    config.setdefault("target", {})["registry"] = registry
    config_file.write_text(yaml.safe_dump(config))


def test_the_example_app_renders_with_no_error_findings(project: Path) -> None:
    result = api.plan(project)
    assert result.lint is not None
    assert [f.line() for f in result.lint.errors] == []
    # without a registry, plan says clearly that the images must be pushed somewhere
    assert {f.rule for f in result.lint.warnings} >= {"image-pullable"}
    set_registry(project, "registry.example.com/acme")
    again = api.plan(project)
    assert again.lint is not None and again.lint.errors == []
    assert "image-pullable" not in {f.rule for f in again.lint.warnings}


@pytest.fixture
def images_are_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI tests need one error finding they can turn on alone: image-pullable, a
    warning since plan and render must work before a project has a registry, is raised
    to an error here."""
    from dataclasses import replace

    lint._load_rules()
    info = lint.RULES["image-pullable"]

    def as_error(model: SetModel) -> list[Finding]:
        return [replace(f, severity="error") for f in info.check(model)]

    monkeypatch.setitem(lint.RULES, info.id, lint.RuleInfo(info.id, info.summary, as_error))


@pytest.mark.usefixtures("images_are_errors")
def test_render_fails_on_an_error_finding_and_writes_nothing(project: Path) -> None:
    only_images = all_rules_but("image-pullable")
    result = run("-C", str(project), "render", "--out", "k8s", *only_images)
    assert result.exit_code == 1, result.output
    assert "image-pullable" in result.stderr and "name no registry host" in result.stderr
    assert "set target.registry in migrate.yaml" in result.stderr
    assert not (project / "k8s").exists()
    relaxed = run(
        "-C",
        str(project),
        "render",
        "--out",
        "k8s",
        "--minimum-failure-severity",
        "none",
        *only_images,
    )
    assert relaxed.exit_code == 0, relaxed.output
    assert "Whole-set checks:" in relaxed.stdout and "name no registry host" in relaxed.stdout
    assert (project / "k8s" / "phase-2").is_dir()


def test_render_passes_once_the_registry_is_set(project: Path) -> None:
    set_registry(project, "127.0.0.1:5000/acme")
    result = run("-C", str(project), "render", "--output", "json", *all_rules_but("image-pullable"))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["findings"] == []


def test_render_fails_on_warnings_when_asked(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def warn_once(model: SetModel) -> list[Finding]:
        first = model.manifests[0]
        return [Finding("test-warning", "warning", first.ref, SetModel.where(first), "m", "f")]

    lint._load_rules()
    monkeypatch.setitem(lint.RULES, "test-warning", lint.RuleInfo("test-warning", "", warn_once))
    rules = all_rules_but("test-warning")
    plain = run("-C", str(project), "render", "--out", "k8s", *rules)
    assert plain.exit_code == 0, plain.output
    assert "warning test-warning" in plain.stdout
    strict = run(
        "-C",
        str(project),
        "render",
        "--out",
        "k8s2",
        "--minimum-failure-severity",
        "warning",
        *rules,
    )
    assert strict.exit_code == 1, strict.output
    assert "0 error(s) and 1 warning(s)" in strict.stderr and not (project / "k8s2").exists()


@pytest.mark.usefixtures("images_are_errors")
def test_plan_reports_findings_in_json_and_exits_1(project: Path) -> None:
    only_images = all_rules_but("image-pullable")
    result = run("-C", str(project), "plan", "--output", "json", *only_images)
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document["version"] == 1 and "summary" in document and "phases" in document
    found = document["findings"]
    assert found and {f["rule"] for f in found} == {"image-pullable"}
    assert set(found[0]) == {"rule", "severity", "object", "file", "message", "fix", "source"}
    # --phase 1 renders nothing of ours: its findings are none, judged against the set
    phase1 = run("-C", str(project), "plan", "--phase", "1", "--output", "json", *only_images)
    assert phase1.exit_code == 0, phase1.output
    assert json.loads(phase1.stdout)["findings"] == []
    phase3 = run("-C", str(project), "plan", "--phase", "3", "--output", "json", *only_images)
    assert {f["file"].split("/")[0] for f in json.loads(phase3.stdout)["findings"]} == {"phase-3"}
    # the findings fail the plan also under --detailed-exitcode; `none` reports only
    detailed = run("-C", str(project), "plan", "--detailed-exitcode", *only_images)
    assert detailed.exit_code == 1
    assert "Whole-set checks:" in detailed.stdout and "fix:" in detailed.stdout
    relaxed = run(
        "-C",
        str(project),
        "plan",
        "--detailed-exitcode",
        "--minimum-failure-severity",
        "none",
        *only_images,
    )
    assert relaxed.exit_code == 2, relaxed.output


def test_plan_refuses_an_unknown_rule(project: Path) -> None:
    result = run("-C", str(project), "plan", "--skip-check", "no-such-rule")
    assert result.exit_code == 1 and "no such rule" in result.stderr


def test_a_project_without_manifests_tasks_has_no_findings(project: Path) -> None:
    roadmap = {
        "phases": [
            {
                "id": 1,
                "name": "Only by hand",
                "tasks": [{"id": "by-hand", "title": "Do it", "action": "manual"}],
            }
        ]
    }
    (project / "phases" / "roadmap.yaml").write_text(yaml.safe_dump(roadmap))
    result = run("-C", str(project), "plan", "--output", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["findings"] == []
