"""Rendering the example application: what each phase holds, hardening, no secrets.

Tests that only read the render share one (`example_render`, tests/conftest.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from migrate import api
from migrate.manifests.model import Manifest, PhaseManifests
from migrate.manifests.render import write
from migrate.project import open_context
from tests.unit.test_lint_wiring import rule_findings


def _render(phases: list[PhaseManifests]) -> dict[int, list[Manifest]]:
    return {p.phase: list(p.manifests) for p in phases}


def _kinds(manifests: list[Manifest]) -> set[str]:
    return {m.kind for m in manifests}


def _one(manifests: list[Manifest], kind: str, name: str) -> dict[str, Any]:
    found = [m.obj for m in manifests if m.kind == kind and m.name == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def test_every_phase_renders_what_the_issue_lists(example_render: list[PhaseManifests]) -> None:
    by_phase = _render(example_render)
    assert {
        "Namespace",
        "ResourceQuota",
        "LimitRange",
        "ServiceAccount",
        "Role",
        "RoleBinding",
    } <= _kinds(by_phase[1])
    assert {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "PeerAuthentication",
        "DestinationRule",
        "VirtualService",
        "Ingress",
        "ServiceMonitor",
    } <= _kinds(by_phase[2])
    assert {
        "Deployment",
        "Kafka",
        "KafkaTopic",
        "HorizontalPodAutoscaler",
        "ScaledObject",
        "PodMonitor",
    } <= _kinds(by_phase[3])
    assert {"StatefulSet", "Elasticsearch", "Kibana", "NetworkPolicy"} <= _kinds(by_phase[4])


def test_namespace_enforces_restricted_pod_security_and_mesh_injection(
    example_render: list[PhaseManifests],
) -> None:
    namespace = _one(_render(example_render)[1], "Namespace", "project")
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce-version"] == "v1.30"
    assert labels["istio-injection"] == "enabled"


def test_plugin_deployments_are_hardened(example_render: list[PhaseManifests]) -> None:
    deployments = [m for m in _render(example_render)[2] if m.kind == "Deployment"]
    assert len(deployments) == 12  # 6 plugins x (blue, green)
    for manifest in deployments:
        pod = manifest.obj["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        (container,) = pod["containers"]
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert {"mountPath": "/tmp", "name": "tmp"} in container["volumeMounts"]
        assert {"emptyDir": {"sizeLimit": "64Mi"}, "name": "tmp"} in pod["volumes"]
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        for probe in ("livenessProbe", "startupProbe"):
            assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["resources"]["requests"] and container["resources"]["limits"]
        env = {e["name"]: e for e in container["env"]}
        assert env["MIGRATE_ROLE"]["value"] == "service"
        assert "DATABASE_URL" not in env  # only the orchestrator keeps state
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"].startswith("http://jaeger-collector")
        annotations = manifest.obj["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"


def test_blue_green_service_selects_the_active_track(example_render: list[PhaseManifests]) -> None:
    # the Service sends to one track, the active one: lint rule blue-green-one-track
    assert rule_findings(example_render, "blue-green-one-track", "selector-matches-pods") == []
    phase2 = _render(example_render)[2]
    service = _one(phase2, "Service", "report-writer")
    assert service["metadata"]["annotations"]["migrate/active-track"] == "blue"
    blue = _one(phase2, "Deployment", "report-writer-blue")
    green = _one(phase2, "Deployment", "report-writer-green")
    image = blue["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith("project/report-writer:")
    assert green["spec"]["template"]["spec"]["containers"][0]["image"] == image


def test_ingress_routes_plugins_under_their_path(example_render: list[PhaseManifests]) -> None:
    ingress = _one(_render(example_render)[2], "Ingress", "project-plugins")
    paths = {
        p["path"]: p["backend"]["service"]["name"]
        for p in ingress["spec"]["rules"][0]["http"]["paths"]
    }
    assert paths["/plugins/code-reviewer(/|$)(.*)"] == "code-reviewer"
    assert len(paths) == 6
    assert ingress["spec"]["ingressClassName"] == "nginx"


def test_istio_objects_per_plugin(example_render: list[PhaseManifests]) -> None:
    phase2 = _render(example_render)[2]
    peer = _one(phase2, "PeerAuthentication", "default")
    assert peer["spec"] == {"mtls": {"mode": "STRICT"}}
    virtual = _one(phase2, "VirtualService", "planner")
    route = virtual["spec"]["http"][0]
    assert route["timeout"] == "30s" and route["retries"]["attempts"] == 3
    rule = _one(phase2, "DestinationRule", "planner")
    assert rule["spec"]["trafficPolicy"]["tls"] == {"mode": "ISTIO_MUTUAL"}


def test_kafka_topic_for_every_event_its_dead_letters_and_settled_notices(
    example_render: list[PhaseManifests],
) -> None:
    phase3 = _render(example_render)[3]
    topics = {m.obj["spec"]["topicName"] for m in phase3 if m.kind == "KafkaTopic"}
    types = {
        "task.created",
        "plan.ready",
        "review.done",
        "research.done",
        "report.ready",
        "summary.ready",
        "notification.sent",
    }
    assert topics == types | {f"{t}.dlq" for t in types} | {"migrate.settled"}
    kafka = _one(phase3, "Kafka", "project-events")
    assert kafka["apiVersion"] == "kafka.strimzi.io/v1"


def test_phase3_orchestrator_workers_and_autoscalers(example_render: list[PhaseManifests]) -> None:
    by_phase = _render(example_render)
    phase3 = by_phase[3]
    orchestrator = _one(phase3, "Deployment", "project-orchestrator")
    workers = [m for m in phase3 if m.kind == "Deployment" and m.name.endswith("-worker")]
    assert len(workers) == 6
    hpa = _one(phase3, "HorizontalPodAutoscaler", "project-orchestrator")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 10
    # CPU HPAs for what serves requests: the orchestrator and each plugin's active track
    targets = {
        m.obj["spec"]["scaleTargetRef"]["name"]
        for m in phase3
        if m.kind == "HorizontalPodAutoscaler"
    }
    active = {m.name for m in by_phase[2] if m.kind == "Deployment" and m.name.endswith("-blue")}
    assert targets == {"project-orchestrator"} | active
    # workers scale on lag (KEDA), never on CPU
    scaled = {m.obj["spec"]["scaleTargetRef"]["name"] for m in phase3 if m.kind == "ScaledObject"}
    assert scaled == {m.name for m in workers}
    # the autoscalers own the replica count: lint rule autoscaler-owns-replicas
    assert orchestrator["spec"]["template"]
    assert rule_findings(example_render, "autoscaler-owns-replicas") == []


def test_network_policies_deny_by_default_and_allow_needed_flows(
    example_render: list[PhaseManifests],
) -> None:
    names = {m.name for m in _render(example_render)[4] if m.kind == "NetworkPolicy"}
    assert {
        "default-deny",
        "allow-dns",
        "allow-ingress-controller-to-plugins",
        "allow-database-egress",
        "allow-telemetry",
        "allow-kafka",
        "allow-app-to-kafka",
        "allow-cache",
        "allow-app-to-redis",
    } <= names
    # the orchestrator reaches plugins through the bus, never over HTTP
    assert "allow-orchestrator-to-plugins" not in names
    # every flow the architecture needs passes: lint rule network-policy-allows-flow
    assert rule_findings(example_render, "network-policy-allows-flow") == []


def test_roadmap_checks_name_rendered_objects(
    shared_project: Path, example_render: list[PhaseManifests]
) -> None:
    """The k8s_resource checks of manifests/infra tasks point at objects that are rendered."""
    ctx = open_context(shared_project)
    rendered = {(m.kind, m.name) for p in example_render for m in p.manifests}
    releases = {r.name for p in example_render for r in p.releases}
    for _, task in ctx.roadmap.tasks():
        if task.action not in ("manifests", "infra"):
            continue
        for check in task.checks:
            spec = check.model_dump().get("k8s_resource")
            if not spec:
                continue
            spec = ctx.expand(spec)
            if spec.get("namespace") == "monitoring":  # installed by a Helm release
                assert "kube-prometheus-stack" in releases
                continue
            assert (spec["kind"], spec["name"]) in rendered, (task.id, spec)


def test_render_is_byte_stable(shared_project: Path, tmp_path: Path) -> None:
    first = api.render(shared_project, out=tmp_path / "a")
    api.render(shared_project, out=tmp_path / "b")
    for path in first.files:
        relative = path.relative_to(tmp_path / "a")
        assert path.read_bytes() == (tmp_path / "b" / relative).read_bytes()
    text = (tmp_path / "a" / "phase-1" / "namespace-project.yaml").read_text()
    assert text.splitlines()[0] == "apiVersion: v1"  # sorted keys


def test_render_removes_files_it_no_longer_produces(shared_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    api.render(shared_project, phase=1, out=out)
    stale = out / "phase-1" / "deployment-gone.yaml"
    stale.write_text("kind: Deployment\n")
    api.render(shared_project, phase=1, out=out)
    assert not stale.exists()
    assert not (out / "phase-2").exists()


@pytest.mark.parametrize("where", ["env", "config"])
def test_no_rendered_file_contains_the_database_password(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    password = "s3cr3t-Pa55word-never-rendered"
    url = f"postgresql://app:{password}@db.example.internal:5432/app"
    if where == "env":
        monkeypatch.setenv("MIGRATE_DATABASE_URL", url)
    else:
        config = project / "migrate.yaml"
        config.write_text(
            config.read_text().replace(
                "  schema: legacy", f"  schema: legacy\n  database_url: {url}"
            )
        )
    result = api.render(project, out=tmp_path / "out", diagram=True)
    assert result.files
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert password not in path.read_text(encoding="utf-8"), path


def test_write_one_file_per_object(example_render: list[PhaseManifests], tmp_path: Path) -> None:
    phases = example_render
    files = write(phases, tmp_path)
    objects = sum(len(p.manifests) + len(p.releases) for p in phases)
    assert len(files) == objects == len(set(files))
