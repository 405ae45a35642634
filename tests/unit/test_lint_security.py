"""Whole-set checks, security and mesh half: a hand-made broken set produces each finding,
and the fixed variant does not."""

from __future__ import annotations

import copy
from typing import Any

from migrate.manifests import lint
from migrate.manifests.model import HelmRelease, Manifest, PhaseManifests, TaskManifests

NS = "app"
GOOD_SC = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def manifest(obj: dict[str, Any]) -> Manifest:
    return Manifest(phase=1, task="t", component="c", template="x", obj=obj, app_namespace=NS)


def release(
    name: str, chart: str, namespace: str, values: Any = None, version: str = "1"
) -> HelmRelease:
    return HelmRelease(
        name=name, chart=chart, version=version, repository="https://example.invalid",
        namespace=namespace, component="c", values=values or {}, phase=1,
    )  # fmt: skip


def findings(
    rule: str, objs: list[dict[str, Any]], releases: list[HelmRelease] = ()
) -> list[lint.Finding]:  # type: ignore[assignment]
    task = TaskManifests(1, "t", ("c",), tuple(manifest(o) for o in objs), tuple(releases))
    report = lint.check([PhaseManifests(1, (task,))])
    return [f for f in report.findings if f.rule == rule]


def namespace(**labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": labels}}


def deployment(
    name: str = "planner", env: list[dict[str, Any]] | None = None, sc: Any = GOOD_SC
) -> dict[str, Any]:
    container = {
        "name": "plugin",
        "image": "x/planner:1",
        "ports": [{"name": "http", "containerPort": 8080}],
        "env": env or [{"name": "MIGRATE_ROLE", "value": "service"}],
        "securityContext": sc,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [container]},
            },
        },
    }


def service(name: str = "planner") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
        "spec": {
            "selector": {"app": name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


STRICT = {
    "apiVersion": "security.istio.io/v1",
    "kind": "PeerAuthentication",
    "metadata": {"name": "default", "namespace": NS},
    "spec": {"mtls": {"mode": "STRICT"}},
}
MONITOR = {
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "ServiceMonitor",
    "metadata": {"name": "planner", "namespace": NS},
    "spec": {"selector": {"matchLabels": {"app": "planner"}}, "endpoints": [{"port": "http"}]},
}
PROMETHEUS = release("kube-prometheus-stack", "kube-prometheus-stack", "monitoring")


def test_strict_mtls_refuses_prometheus_without_sidecar() -> None:
    objs = [namespace(**{"istio-injection": "enabled"}), deployment(), service(), STRICT, MONITOR]
    found = findings("mtls-callers-without-sidecar", objs, [PROMETHEUS])
    assert len(found) == 1 and "Prometheus scrapes it" in found[0].message
    assert (
        "port 8080" in found[0].message
        and found[0].file == "phase-1/peerauthentication-default.yaml"
    )
    permissive = {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "metrics", "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"app": "planner"}},
            "portLevelMtls": {"8080": {"mode": "PERMISSIVE"}},
        },
    }
    assert not findings("mtls-callers-without-sidecar", [*objs, permissive], [PROMETHEUS])
    # a namespace-wide portLevelMtls is ignored by Istio: still refused
    ns_wide = copy.deepcopy(STRICT)
    ns_wide["spec"]["portLevelMtls"] = {"8080": {"mode": "PERMISSIVE"}}
    found = findings("mtls-callers-without-sidecar", [*objs[:3], ns_wide, MONITOR], [PROMETHEUS])
    assert found and "ignored" in found[0].message


def test_psa_rejects_own_deployment() -> None:
    ns = namespace(**{"pod-security.kubernetes.io/enforce": "restricted"})
    found = findings("pod-security-admission", [ns, deployment(sc={"runAsUser": 0})])
    assert len(found) == 1 and "allowPrivilegeEscalation" in found[0].message
    assert "runAsUser: 0" in found[0].message
    assert not findings("pod-security-admission", [ns, deployment()])
    privileged = findings(
        "pod-security-admission", [namespace(), deployment(sc={"privileged": True})]
    )
    assert not privileged  # no enforce label: privileged


def kafka(template: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    spec: dict[str, Any] = {
        "kafka": {"listeners": [{"name": "plain", "port": 9092}]},
        "entityOperator": {"topicOperator": {}},
    }
    if template:
        spec["kafka"]["template"] = template
        spec["entityOperator"]["template"] = {"pod": template["pod"]}
    pool = {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaNodePool",
        "metadata": {"name": "pool", "namespace": NS, "labels": {"strimzi.io/cluster": "events"}},
        "spec": {"replicas": 3, "roles": ["broker"]},
    }
    return [
        {
            "apiVersion": "kafka.strimzi.io/v1beta2",
            "kind": "Kafka",
            "metadata": {"name": "events", "namespace": NS},
            "spec": spec,
        },
        pool,
    ]


def test_psa_rejects_strimzi_pods_without_the_restricted_provider() -> None:
    ns = namespace(**{"pod-security.kubernetes.io/enforce": "restricted"})
    baseline = release("strimzi", "strimzi-kafka-operator", "strimzi")
    found = findings("pod-security-admission", [ns, *kafka()], [baseline])
    assert {f.object for f in found} == {
        "Kafka app/events (broker pods of pool pool)",
        "Kafka app/events (entity operator pod)",
    }
    assert (
        "STRIMZI_POD_SECURITY_PROVIDER_CLASS" in found[0].fix
        and "Strimzi" not in found[0].source[:0]
    )
    restricted = release(
        "strimzi", "strimzi-kafka-operator", "strimzi",
        {"extraEnvs": [{"name": "STRIMZI_POD_SECURITY_PROVIDER_CLASS", "value": "restricted"}]},
    )  # fmt: skip
    assert not findings("pod-security-admission", [ns, *kafka()], [restricted])


def kibana(init: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    pod: dict[str, Any] = {"containers": [{"name": "kibana", "securityContext": GOOD_SC}]}
    if init is not None:
        pod["initContainers"] = init
    return {
        "apiVersion": "kibana.k8s.elastic.co/v1",
        "kind": "Kibana",
        "metadata": {"name": "kb", "namespace": NS},
        "spec": {"version": "8.15.2", "count": 1, "podTemplate": {"spec": pod}},
    }


def test_psa_rejects_kibana_init_container_unless_the_pod_template_sets_it() -> None:
    ns = namespace(**{"pod-security.kubernetes.io/enforce": "restricted"})
    eck = release("eck-operator", "eck-operator", "elastic-system", version="2.14.0")
    found = findings("pod-security-admission", [ns, kibana()], [eck])
    assert len(found) == 1 and "elastic-internal-init-config" in found[0].message
    assert "init_configuration.go" in found[0].source
    fixed = kibana([{"name": "elastic-internal-init-config", "securityContext": GOOD_SC}])
    assert not findings("pod-security-admission", [ns, fixed], [eck])


def test_operator_pods_in_an_injected_namespace() -> None:
    ns = namespace(**{"istio-injection": "enabled"})
    found = findings("mesh-operator-pods", [ns, *kafka()])
    assert len(found) == 2 and "does not support sidecars" in found[0].message
    off = {"pod": {"metadata": {"labels": {"sidecar.istio.io/inject": "false"}}}}
    assert not findings("mesh-operator-pods", [ns, *kafka(off)])


def virtual_service(retry_on: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "planner", "namespace": NS},
        "spec": {
            "hosts": ["planner"],
            "http": [
                {
                    "retries": {"attempts": 3, "retryOn": retry_on},
                    "route": [{"destination": {"host": "planner"}}],
                }
            ],
        },
    }


def test_retries_on_5xx_for_post() -> None:
    found = findings("retries-idempotent-only", [virtual_service("5xx,reset")])
    assert len(found) == 1 and "POST" in found[0].message
    assert not findings(
        "retries-idempotent-only", [virtual_service("connect-failure,refused-stream")]
    )
    get_only = virtual_service("5xx")
    get_only["spec"]["http"][0]["match"] = [{"method": {"exact": "GET"}}]
    assert not findings("retries-idempotent-only", [get_only])


def ingress(annotations: dict[str, str] | None = None) -> dict[str, Any]:
    backend = {"service": {"name": "planner", "port": {"name": "http"}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "plugins", "namespace": NS, "annotations": annotations or {}},
        "spec": {
            "rules": [
                {
                    "http": {
                        "paths": [
                            {"path": "/plugins/planner", "pathType": "Prefix", "backend": backend}
                        ]
                    }
                }
            ]
        },
    }


def test_unauthenticated_invoke_and_ingress_without_tls() -> None:
    objs = [namespace(), deployment(), service(), ingress()]
    found = findings("exposed-with-auth", objs)
    assert len(found) == 1 and "POST /invoke of Deployment app/planner" in found[0].message
    assert findings("ingress-tls-host", objs)
    authed = [
        namespace(),
        deployment(),
        service(),
        ingress({"nginx.ingress.kubernetes.io/auth-url": "https://auth/check"}),
    ]
    assert not findings("exposed-with-auth", authed)
    jwt = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "require-jwt", "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"app": "planner"}},
            "rules": [{"from": [{"source": {"requestPrincipals": ["*"]}}]}],
        },
    }
    meshed = [namespace(**{"istio-injection": "enabled"}), deployment(), service(), ingress(), jwt]
    assert not findings("exposed-with-auth", meshed)


def test_service_upstream_without_vhost_into_the_mesh() -> None:
    controller = release(
        "ingress-nginx",
        "ingress-nginx",
        "ingress-nginx",
        {"controller": {"podLabels": {"sidecar.istio.io/inject": "true"}}},
    )
    broken = ingress({"nginx.ingress.kubernetes.io/service-upstream": "true"})
    assert findings("ingress-upstream-vhost", [broken], [controller])
    fixed = ingress(
        {
            "nginx.ingress.kubernetes.io/service-upstream": "true",
            "nginx.ingress.kubernetes.io/upstream-vhost": "planner.app.svc.cluster.local",
        }
    )
    assert not findings("ingress-upstream-vhost", [fixed], [controller])


def test_mesh_tracing_without_provider() -> None:
    istiod = release("istiod", "istiod", "istio-system", {"meshConfig": {"enableTracing": True}})
    assert findings("mesh-tracing-wired", [], [istiod])
    wired = release(
        "istiod",
        "istiod",
        "istio-system",
        {
            "meshConfig": {
                "extensionProviders": [
                    {"name": "otel", "opentelemetry": {"service": "jaeger", "port": 4317}}
                ]
            }
        },
    )
    assert findings("mesh-tracing-wired", [], [wired])  # defined but never enabled
    telemetry = {
        "apiVersion": "telemetry.istio.io/v1",
        "kind": "Telemetry",
        "metadata": {"name": "mesh-default", "namespace": "istio-system"},
        "spec": {"tracing": [{"providers": [{"name": "otel"}]}]},
    }
    assert not findings("mesh-tracing-wired", [telemetry], [wired])


def policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


DENY = policy("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
KUBE_SYSTEM = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}
DNS = policy(
    "allow-dns",
    {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [KUBE_SYSTEM],
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
            }
        ],
    },
)


def test_network_policy_missing_flows() -> None:
    env = [
        {"name": "MIGRATE_ROLE", "value": "worker"},
        {"name": "REDIS_URL", "value": "redis://queue.app.svc:6379/0"},
    ]
    queue = deployment("queue", env=[{"name": "X", "value": "1"}])
    queue["spec"]["template"]["spec"]["containers"][0]["ports"] = [
        {"name": "redis", "containerPort": 6379}
    ]
    queue_svc = service("queue")
    queue_svc["spec"]["ports"] = [{"name": "redis", "port": 6379, "targetPort": "redis"}]
    objs = [namespace(), deployment("worker", env=env), queue, queue_svc, DENY]
    found = findings("network-policy-allows-flow", objs)
    messages = " ".join(f.message for f in found)
    assert "53/UDP" in messages and "6379/TCP" in messages
    to_redis = policy(
        "to-redis",
        {
            "podSelector": {"matchLabels": {"app": "worker"}},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [{"podSelector": {"matchLabels": {"app": "queue"}}}],
                    "ports": [{"port": 6379}],
                }
            ],
        },
    )
    from_worker = policy(
        "redis-in",
        {
            "podSelector": {"matchLabels": {"app": "queue"}},
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"app": "worker"}}}],
                    "ports": [{"port": "redis"}],
                }
            ],
        },
    )
    assert not findings("network-policy-allows-flow", [*objs, DNS, to_redis, from_worker])
    # the port by name resolves against the target: a wrong name blocks
    wrong = copy.deepcopy(from_worker)
    wrong["spec"]["ingress"][0]["ports"] = [{"port": "http"}]
    found = findings("network-policy-allows-flow", [*objs, DNS, to_redis, wrong])
    assert len(found) == 1 and "ingress" in found[0].message


def test_allow_all_rule_is_too_broad() -> None:
    broad = policy("open", {"podSelector": {}, "ingress": [{"from": [{}]}]})
    found = findings("network-policy-too-broad", [broad])
    assert len(found) == 1 and "any source" in found[0].message
    narrow = policy(
        "open",
        {
            "podSelector": {},
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                            }
                        }
                    ]
                }
            ],
        },
    )
    assert not findings("network-policy-too-broad", [narrow])
    assert not findings("network-policy-too-broad", [DNS])
    egress_any = policy("db", {"podSelector": {}, "egress": [{"ports": [{"port": 5432}]}]})
    assert findings("network-policy-too-broad", [egress_any])


def test_low_uid_is_a_warning() -> None:
    low = deployment(sc=GOOD_SC | {"runAsUser": 999})
    found = findings("run-as-high-uid", [low])
    assert len(found) == 1 and found[0].severity == "warning" and "CKV_K8S_40" in found[0].source
    assert not findings("run-as-high-uid", [deployment(sc=GOOD_SC | {"runAsUser": 10001})])
