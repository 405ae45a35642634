"""Issue 12: the rendered set as it must be to come up on a real cluster.

Mesh (mTLS exceptions, no sidecar in operator pods, tracing, authentication,
retries), Pod Security for operator-made pods, a quota sized from what is
rendered, TLS and a host on the entry point (nginx or Gateway API), and the
smaller points (headless Service, worker PDBs, the idle track, Redis's uid).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate.errors import UserError
from migrate.manifests.helm import jaeger_collector_service
from migrate.manifests.model import HelmRelease, Manifest, PhaseManifests
from migrate.manifests.render import render_project
from migrate.manifests.sizing import SIDECAR, SIZES, Size
from migrate.project import open_context
from tests.unit.test_lint_wiring import rule_findings

NO_SIDECAR = {"sidecar.istio.io/inject": "false"}


def _render(project: Path) -> tuple[list[Manifest], list[HelmRelease]]:
    return _flat(render_project(open_context(project)))


def _flat(phases: list[PhaseManifests]) -> tuple[list[Manifest], list[HelmRelease]]:
    return [m for p in phases for m in p.manifests], [r for p in phases for r in p.releases]


def _of(manifests: list[Manifest], kind: str) -> list[dict[str, Any]]:
    return [m.obj for m in manifests if m.kind == kind]


def _one(manifests: list[Manifest], kind: str, name: str) -> dict[str, Any]:
    found = [m.obj for m in manifests if m.kind == kind and m.name == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def _release(releases: list[HelmRelease], name: str) -> HelmRelease:
    return next(r for r in releases if r.name == name)


def _ingress_config(project: Path, **ingress: Any) -> None:
    path = project / "migrate.yaml"
    config = yaml.safe_load(path.read_text())
    config["target"]["ingress"] = ingress
    path.write_text(yaml.safe_dump(config, sort_keys=False))


# -- item 2: STRICT mTLS and what has no sidecar --------------------------------------


def test_mtls_stays_strict_with_plain_text_only_on_the_scraped_port(
    example_render: list[PhaseManifests],
) -> None:
    manifests, _ = _flat(example_render)
    default = _one(manifests, "PeerAuthentication", "default")
    assert "selector" not in default["spec"] and default["spec"]["mtls"]["mode"] == "STRICT"
    scrape = _one(manifests, "PeerAuthentication", "metrics-scrape")["spec"]
    assert scrape["portLevelMtls"] == {"8080": {"mode": "PERMISSIVE"}}
    assert scrape["selector"]["matchLabels"]["app.kubernetes.io/managed-by"] == "migrate"
    # the monitors scrape a port the pods have, the runtime's, and no caller without a
    # sidecar is refused by STRICT: lint rules over the set
    assert (
        rule_findings(
            example_render,
            "monitor-endpoint-port",
            "runtime-port-served",
            "mtls-callers-without-sidecar",
        )
        == []
    )
    # in plain text only the probe and metrics paths are allowed
    for name in ("plugins", "orchestrators", "workers"):
        rules = _one(manifests, "AuthorizationPolicy", name)["spec"]["rules"]
        open_rules = [r for r in rules if "from" not in r]
        assert open_rules == [
            {
                "to": [
                    {
                        "operation": {
                            "methods": ["GET"],
                            "paths": ["/metrics", "/healthz", "/readyz"],
                            "ports": ["8080"],
                        }
                    }
                ]
            }
        ]


def test_operator_managed_pods_get_no_sidecar(example_render: list[PhaseManifests]) -> None:
    manifests, _ = _flat(example_render)
    # the Strimzi and ECK pods, as the operators make them: lint rule mesh-operator-pods
    assert _of(manifests, "Kafka") and _of(manifests, "Elasticsearch") and _of(manifests, "Kibana")
    assert rule_findings(example_render, "mesh-operator-pods") == []
    # and ours keep theirs (the namespace injects; nothing of ours opts out)
    for kind in ("Deployment", "StatefulSet"):
        for workload in _of(manifests, kind):
            labels = workload["spec"]["template"]["metadata"]["labels"]
            assert "sidecar.istio.io/inject" not in labels


# -- item 3: Pod Security `restricted` for operator-made pods -------------------------

RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _restricted(security: dict[str, Any]) -> bool:
    return all(security.get(key) == value for key, value in RESTRICTED.items())


def test_strimzi_runs_its_restricted_pod_security_provider(
    example_render: list[PhaseManifests],
) -> None:
    # the pods Strimzi and ECK make pass the namespace's level: lint pod-security-admission
    assert rule_findings(example_render, "pod-security-admission") == []
    _, releases = _flat(example_render)
    values = _release(releases, "strimzi").values
    assert {"name": "STRIMZI_POD_SECURITY_PROVIDER_CLASS", "value": "restricted"} in values[
        "extraEnvs"
    ]


def test_eck_init_containers_are_restricted_by_name(example_render: list[PhaseManifests]) -> None:
    manifests, _ = _flat(example_render)
    kibana = _one(manifests, "Kibana", "project-analytics")["spec"]["podTemplate"]["spec"]
    # ECK 3.x names Kibana's init container elastic-internal-init (2.x: -init-config)
    assert [c["name"] for c in kibana["initContainers"]] == ["elastic-internal-init"]
    for container in kibana["initContainers"] + kibana["containers"]:
        assert _restricted(container["securityContext"]), container["name"]
    es = _one(manifests, "Elasticsearch", "project-analytics")["spec"]["nodeSets"][0]
    spec = es["podTemplate"]["spec"]
    assert {c["name"] for c in spec["initContainers"]} == {
        "elastic-internal-init-filesystem",
        "elastic-internal-suspend",
    }
    for container in spec["initContainers"] + spec["containers"]:
        assert _restricted(container["securityContext"]), container["name"]


# -- item 4: a quota that holds what is rendered --------------------------------------


def _quantity(value: str) -> float:
    """CPU in cores or memory in MiB, from a Kubernetes quantity."""
    units = {"m": 1 / 1000, "Mi": 1, "Gi": 1024}
    for suffix, factor in units.items():
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


def _pod_resources(spec: dict[str, Any], sidecar: bool) -> tuple[float, float, float, float]:
    totals = [0.0, 0.0, 0.0, 0.0]
    for container in spec["containers"]:
        resources = container["resources"]
        totals[0] += _quantity(resources["requests"]["cpu"])
        totals[1] += _quantity(resources["requests"]["memory"])
        totals[2] += _quantity(resources["limits"]["cpu"])
        totals[3] += _quantity(resources["limits"]["memory"])
    if sidecar:
        totals = [t + s for t, s in zip(totals, _as_floats(SIDECAR), strict=True)]
    return totals[0], totals[1], totals[2], totals[3]


def _as_floats(size: Size) -> list[float]:
    return [size.cpu / 1000, size.memory, size.cpu_limit / 1000, size.memory_limit]


def test_the_quota_holds_every_pod_at_its_maximum_with_sidecars(
    example_render: list[PhaseManifests],
) -> None:
    """Recounts from the rendered objects (not from sizing.py's own sum): each
    Deployment at its autoscaler's maximum (or its replicas) plus one surge pod, each
    StatefulSet, the operator CRs' pods, and a sidecar in every pod of ours."""
    manifests, _ = _flat(example_render)
    maxima: dict[str, int] = {}
    for hpa in _of(manifests, "HorizontalPodAutoscaler"):
        maxima[hpa["spec"]["scaleTargetRef"]["name"]] = hpa["spec"]["maxReplicas"]
    for scaled in _of(manifests, "ScaledObject"):
        maxima[scaled["spec"]["scaleTargetRef"]["name"]] = scaled["spec"]["maxReplicaCount"]
    need = [0.0, 0.0, 0.0, 0.0]
    pods = 0

    def add(count: int, resources: tuple[float, float, float, float]) -> None:
        nonlocal pods
        pods += count
        for i, value in enumerate(resources):
            need[i] += count * value

    for deployment in _of(manifests, "Deployment"):
        name = deployment["metadata"]["name"]
        count = maxima.get(name, deployment["spec"].get("replicas", 1)) + 1
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        sidecar = "sidecar.istio.io/proxyCPU" in annotations
        add(count, _pod_resources(deployment["spec"]["template"]["spec"], sidecar))
    for stateful in _of(manifests, "StatefulSet"):
        annotations = stateful["spec"]["template"]["metadata"].get("annotations", {})
        sidecar = "sidecar.istio.io/proxyCPU" in annotations
        add(
            stateful["spec"]["replicas"],
            _pod_resources(stateful["spec"]["template"]["spec"], sidecar),
        )
    pool = _of(manifests, "KafkaNodePool")[0]["spec"]
    add(pool["replicas"], _pod_resources({"containers": [{"resources": pool["resources"]}]}, False))
    operators = _of(manifests, "Kafka")[0]["spec"]["entityOperator"]
    add(
        1,
        _pod_resources(
            {"containers": [operators["topicOperator"], operators["userOperator"]]}, False
        ),
    )
    es = _one(manifests, "Elasticsearch", "project-analytics")["spec"]["nodeSets"][0]
    add(es["count"], _pod_resources(es["podTemplate"]["spec"], False))
    kibana = _one(manifests, "Kibana", "project-analytics")["spec"]
    add(kibana["count"] + 1, _pod_resources(kibana["podTemplate"]["spec"], False))

    hard = _of(manifests, "ResourceQuota")[0]["spec"]["hard"]
    assert rule_findings(example_render, "quota-fits") == []  # the rule's own count agrees
    assert int(hard["pods"]) >= pods
    assert _quantity(hard["requests.cpu"]) >= need[0]
    assert _quantity(hard["requests.memory"].replace("Gi", "")) * 1024 >= need[1]
    assert _quantity(hard["limits.cpu"]) >= need[2]
    assert _quantity(hard["limits.memory"].replace("Gi", "")) * 1024 >= need[3]
    # with the documented headroom (25 %), not a number picked out of the air
    assert int(hard["pods"]) <= math.ceil(pods * 1.25) + 2
    assert _quantity(hard["limits.cpu"]) <= math.ceil(need[2] * 1.25)


def test_sidecar_resources_are_explicit_and_agree_with_istiod(
    example_render: list[PhaseManifests],
) -> None:
    manifests, releases = _flat(example_render)
    istiod = _release(releases, "istiod").values
    assert istiod["global"]["proxy"]["resources"] == SIDECAR.to_k8s()
    for deployment in _of(manifests, "Deployment"):
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["sidecar.istio.io/proxyCPULimit"] == "500m"
        assert annotations["sidecar.istio.io/proxyMemoryLimit"] == f"{SIDECAR.memory_limit}Mi"
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        role = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        assert container["resources"] == SIZES[role].to_k8s()


# -- item 5: the entry point ---------------------------------------------------------


def test_nginx_names_the_service_to_the_mesh(example_render: list[PhaseManifests]) -> None:
    manifests, _ = _flat(example_render)
    assert rule_findings(example_render, "ingress-upstream-vhost") == []
    annotations = _one(manifests, "Ingress", "project-plugins")["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/service-upstream"] == "true"
    assert (
        annotations["nginx.ingress.kubernetes.io/upstream-vhost"]
        == "$service_name.$namespace.svc.cluster.local"
    )


def test_a_host_gets_tls_from_cert_manager(project: Path) -> None:
    _ingress_config(project, host="agents.example.com", cluster_issuer="letsencrypt")
    manifests, _ = _render(project)
    ingress = _one(manifests, "Ingress", "project-plugins")
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert ingress["spec"]["tls"] == [
        {"hosts": ["agents.example.com"], "secretName": "project-tls"}
    ]
    assert [r["host"] for r in ingress["spec"]["rules"]] == ["agents.example.com"]


def test_a_host_with_a_named_secret(project: Path) -> None:
    _ingress_config(project, host="agents.example.com", tls_secret="agents-cert")
    manifests, _ = _render(project)
    ingress = _one(manifests, "Ingress", "project-plugins")
    assert "cert-manager.io/cluster-issuer" not in ingress["metadata"]["annotations"]
    assert ingress["spec"]["tls"][0]["secretName"] == "agents-cert"


def test_a_host_without_a_certificate_is_refused(project: Path) -> None:
    _ingress_config(project, host="agents.example.com")
    with pytest.raises(UserError, match=r"target\.ingress\.host") as caught:
        _render(project)
    assert "cluster_issuer" in (caught.value.hint or "")


def test_invoke_is_closed_without_an_issuer_and_needs_a_jwt_with_one(project: Path) -> None:
    manifests, _ = _render(project)
    deny = _one(manifests, "AuthorizationPolicy", "plugins-require-jwt")["spec"]
    assert deny["action"] == "DENY"
    assert deny["rules"] == [
        {
            "from": [{"source": {"notRequestPrincipals": ["*"]}}],
            "to": [{"operation": {"paths": ["/invoke"]}}],
        }
    ]
    assert not _of(manifests, "RequestAuthentication")

    issuer = "https://auth.example.com/"
    jwks = "https://auth.example.com/jwks.json"
    _ingress_config(project, jwt={"issuer": issuer, "jwks_uri": jwks, "audiences": ["agents"]})
    manifests, _ = _render(project)
    authn = _one(manifests, "RequestAuthentication", "plugins")["spec"]
    assert authn["jwtRules"] == [{"issuer": issuer, "jwksUri": jwks, "audiences": ["agents"]}]
    assert authn["selector"] == deny["selector"]


def test_only_idempotent_routes_are_retried(example_render: list[PhaseManifests]) -> None:
    manifests, _ = _flat(example_render)
    services = _of(manifests, "VirtualService")
    assert services
    assert rule_findings(example_render, "retries-idempotent-only") == []
    for service in services:
        routes = service["spec"]["http"]
        catch_all = [r for r in routes if "match" not in r]
        assert catch_all and all(r["retries"] == {"attempts": 0} for r in catch_all)


@pytest.mark.parametrize(
    "ingress",
    [
        {"host": "agents.example.com", "tls_secret": "agents-tls"},
        {
            "controller": "gateway",
            "class_name": "istio",
            "host": "agents.example.com",
            "cluster_issuer": "letsencrypt",
            "jwt": {"issuer": "https://id.example.com", "jwks_uri": "https://id.example.com/k"},
        },
    ],
    ids=["nginx-tls", "gateway-jwt"],
)
def test_every_entry_point_variant_passes_the_whole_set_checks(
    project: Path, ingress: dict[str, Any]
) -> None:
    """The variants the config offers hold together as a set too, not only the default
    (the Gateway's proxy pods are made by its controller, not rendered)."""
    from migrate.manifests import lint

    _ingress_config(project, **ingress)
    report = lint.check(render_project(open_context(project)))
    assert [f.line() for f in report.errors] == []
    assert "ingress-tls-host" not in {f.rule for f in report.warnings}  # a host, with TLS


def test_gateway_api_instead_of_ingress_nginx(project: Path) -> None:
    _ingress_config(
        project,
        controller="gateway",
        class_name="istio",
        host="agents.example.com",
        cluster_issuer="letsencrypt",
    )
    manifests, releases = _render(project)
    assert not _of(manifests, "Ingress")
    assert "ingress-nginx" not in {r.name for r in releases}
    gateway = _one(manifests, "Gateway", "project-plugins")
    assert gateway["spec"]["gatewayClassName"] == "istio"
    (listener,) = gateway["spec"]["listeners"]
    assert listener["protocol"] == "HTTPS" and listener["hostname"] == "agents.example.com"
    assert listener["tls"]["certificateRefs"] == [{"kind": "Secret", "name": "project-tls"}]
    routes = _of(manifests, "HTTPRoute")
    plugins = {s["metadata"]["name"] for s in _of(manifests, "Service")} & {
        r["spec"]["rules"][0]["backendRefs"][0]["name"] for r in routes
    }
    assert len(routes) == len(plugins) == 6
    policy = _one(manifests, "NetworkPolicy", "allow-ingress-controller-to-plugins")
    source = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert source == {"gateway.networking.k8s.io/gateway-name": "project-plugins"}


# -- item 6: mesh tracing -------------------------------------------------------------


def test_mesh_tracing_goes_to_the_jaeger_collector(example_render: list[PhaseManifests]) -> None:
    manifests, releases = _flat(example_render)
    assert rule_findings(example_render, "mesh-tracing-wired") == []
    mesh = _release(releases, "istiod").values["meshConfig"]
    assert "enableTracing" not in mesh
    (provider,) = mesh["extensionProviders"]
    jaeger = _release(releases, "jaeger")
    assert provider["opentelemetry"] == {
        "service": f"{jaeger_collector_service()}.{jaeger.namespace}.svc.cluster.local",
        "port": 4317,
    }
    assert jaeger.values["allInOne"]["service"]["collector"]["otlp"]["grpc"]["name"] == "otlp-grpc"
    telemetry = _one(manifests, "Telemetry", "tracing")["spec"]
    assert [p["name"] for t in telemetry["tracing"] for p in t["providers"]] == [provider["name"]]


# -- item 8: smaller points -----------------------------------------------------------


def test_statefulsets_are_governed_by_headless_services(
    example_render: list[PhaseManifests],
) -> None:
    manifests, _ = _flat(example_render)
    services = {s["metadata"]["name"]: s for s in _of(manifests, "Service")}
    stateful = _of(manifests, "StatefulSet")
    assert len(stateful) == 2
    assert rule_findings(example_render, "statefulset-headless-service") == []
    for workload in stateful:
        # clients keep the ClusterIP Service named like the StatefulSet
        assert "clusterIP" not in services[workload["metadata"]["name"]]["spec"]


def test_redis_runs_as_a_high_uid_with_a_writable_data_dir(
    example_render: list[PhaseManifests],
) -> None:
    manifests, _ = _flat(example_render)
    assert rule_findings(example_render, "run-as-high-uid") == []
    for workload in _of(manifests, "StatefulSet"):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["securityContext"]["fsGroup"] == 10001
        assert pod["containers"][0]["securityContext"]["runAsUser"] == 10001


def test_workers_that_keep_two_replicas_have_a_disruption_budget(
    example_render: list[PhaseManifests],
) -> None:
    manifests, _ = _flat(example_render)
    assert rule_findings(example_render, "replicated-has-pdb") == []
    budgets = {b["metadata"]["name"]: b for b in _of(manifests, "PodDisruptionBudget")}
    for scaled in _of(manifests, "ScaledObject"):
        name = scaled["spec"]["scaleTargetRef"]["name"]
        if scaled["spec"]["minReplicaCount"] >= 2:
            assert budgets[name]["spec"]["maxUnavailable"] == 1  # the value: layout
        else:
            assert name not in budgets


def test_the_idle_track_keeps_one_warm_pod(example_render: list[PhaseManifests]) -> None:
    manifests, _ = _flat(example_render)
    services = [
        s
        for s in _of(manifests, "Service")
        if "migrate/active-track" in s["metadata"].get("annotations", {})
    ]
    assert services
    hpa_targets = {
        h["spec"]["scaleTargetRef"]["name"] for h in _of(manifests, "HorizontalPodAutoscaler")
    }
    for service in services:
        name = service["metadata"]["name"]
        active = service["metadata"]["annotations"]["migrate/active-track"]
        idle = "green" if active == "blue" else "blue"
        assert _one(manifests, "Deployment", f"{name}-{idle}")["spec"]["replicas"] == 1
        assert f"{name}-{active}" in hpa_targets
    # the active track's count is its HPA's, never reset by an apply, and the Service
    # sends to the active track only: lint rules over the set
    assert rule_findings(example_render, "autoscaler-owns-replicas", "blue-green-one-track") == []
