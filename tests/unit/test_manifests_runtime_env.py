"""The manifests set only what the runtime reads (migrate.runtime.settings), per role.

The example application is rendered (every phase) with each bus (Kafka, the
Redis queue) and a cached plugin; per container role, the environment names
must be variables the runtime reads in that role, and the ones each role
needs must be there, pointing at objects that are rendered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate.inventory import scan
from migrate.manifests.model import Manifest, PhaseManifests
from migrate.manifests.render import ManifestError, render_project
from migrate.manifests.runtime_env import containers, env_errors
from migrate.project import open_context
from tests.unit.test_lint_wiring import rule_findings

#: what each role must be told (the rest has defaults or is baked into the image)
REQUIRED = {
    "service": {"MIGRATE_ROLE", "PORT", "OTEL_EXPORTER_OTLP_ENDPOINT"},
    "worker": {
        "MIGRATE_ROLE",
        "PORT",
        "MIGRATE_BUS",
        "MIGRATE_CONSUMES",
        "MIGRATE_PRODUCES",
        "MIGRATE_GROUP",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    },
    "orchestrator": {
        "MIGRATE_ROLE",
        "PORT",
        "MIGRATE_BUS",
        "DATABASE_URL",
        "DATABASE_SCHEMA",
        "MIGRATE_EVENT_GRAPH",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    },
}
BUS = {"kafka": {"KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"}, "redis": {"REDIS_URL"}}


def configure(project: Path, *, queue: str, cached: dict[str, int] | None = None) -> None:
    """Pick the workers' bus in the project's roadmap; cache plugins in migrate.yaml."""
    roadmap_file = project / "phases" / "roadmap.yaml"
    roadmap = yaml.safe_load(roadmap_file.read_text())
    found = 0
    for phase in roadmap["phases"]:
        for task in phase["tasks"]:
            if "workers" in (task.get("with") or {}).get("components", []):
                task["with"]["queue"] = queue
                found += 1
    assert found == 1, "the roadmap has no workers task"
    roadmap_file.write_text(yaml.safe_dump(roadmap, sort_keys=False))
    if cached:
        config_file = project / "migrate.yaml"
        config = yaml.safe_load(config_file.read_text())
        config["plugins"] = {name: {"cache_ttl_s": ttl} for name, ttl in cached.items()}
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))


def rendered(project: Path) -> list[Manifest]:
    return [m for p in render_project(open_context(project)) for m in p.manifests]


def _value(env: dict[str, dict[str, Any]], name: str) -> str:
    return str(env[name]["value"])


@pytest.mark.parametrize("queue", ["kafka", "redis"])
def test_every_env_var_is_read_by_the_runtime_in_that_role(project: Path, queue: str) -> None:
    configure(project, queue=queue, cached={"summarizer": 60})
    phases = render_project(open_context(project))
    manifests = [m for p in phases for m in p.manifests]
    # read by the runtime in that role, and what the role cannot run without: lint rules
    assert rule_findings(phases, "runtime-env-read", "runtime-env-required") == []
    by_role: dict[str, set[str]] = {role: set() for role in ("service", "worker", "orchestrator")}
    found = containers(manifests)
    for container in found:
        names = set(container.env)
        # what our templates tell each role explicitly (PORT and OTLP have defaults)
        required = REQUIRED[container.role] | (BUS[queue] if container.role != "service" else set())
        assert required <= names, (container.where, required - names)
        by_role[container.role] |= names
    assert {c.role for c in found} == {"service", "worker", "orchestrator"}
    # 6 plugins: a blue and a green service each, a worker each; one orchestrator
    assert sorted(c.role for c in found).count("service") == 12
    assert [c.role for c in found].count("worker") == 6
    # plugin services need no bus; only the orchestrator reaches the database
    assert not by_role["service"] & {"MIGRATE_BUS", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS"}
    assert "DATABASE_URL" not in by_role["service"] | by_role["worker"]
    assert {"MIGRATE_CACHE_TTL_S", "MIGRATE_CACHE_URL"} <= by_role["service"] & by_role["worker"]


@pytest.mark.parametrize("queue", ["kafka", "redis"])
def test_bus_settings_point_at_rendered_objects(project: Path, queue: str) -> None:
    configure(project, queue=queue)
    phases = render_project(open_context(project))
    # every address reaches pods of the set: lint rule runtime-address-rendered
    assert rule_findings(phases, "runtime-address-rendered") == []
    manifests = [m for p in phases for m in p.manifests]
    services = {m.name for m in manifests if m.kind == "Service"}
    kafka = {m.name for m in manifests if m.kind == "Kafka"}
    for container in containers(manifests):
        if container.role == "service":
            continue
        assert _value(container.env, "MIGRATE_BUS") == queue
        # the queue's Redis: the streams (redis), or the idempotency keys (kafka)
        assert _value(container.env, "REDIS_URL") == "redis://project-queue.project.svc:6379/0"
        assert "project-queue" in services
        if queue == "redis":
            assert "KAFKA_BOOTSTRAP_SERVERS" not in container.env
        else:
            bootstrap = _value(container.env, "KAFKA_BOOTSTRAP_SERVERS")
            cluster = bootstrap.split("-kafka-bootstrap.")[0]
            assert cluster in kafka and bootstrap.endswith(".project.svc:9092")


def test_workers_consume_what_their_plugin_yaml_says(
    shared_project: Path, example_render: list[PhaseManifests]
) -> None:
    manifests = [m for p in example_render for m in p.manifests]
    plugins = {p.name: p for p in scan(shared_project.parent / "agents-app").plugins}
    workers = [c for c in containers(manifests) if c.role == "worker"]
    assert len(workers) == len(plugins)
    for worker in workers:
        name = worker.manifest.obj["metadata"]["annotations"]["migrate/plugin"]
        events = plugins[name].manifest.events
        assert _value(worker.env, "MIGRATE_CONSUMES").split(",") == events.consumes
        assert _value(worker.env, "MIGRATE_PRODUCES").split(",") == events.produces
        # the consumer group is the worker Deployment's name (KEDA reads its lag)
        assert _value(worker.env, "MIGRATE_GROUP") == worker.manifest.name
        assert worker.manifest.name.endswith("-worker")


def test_the_orchestrator_learns_the_event_graph_from_the_inventory(
    shared_project: Path, example_render: list[PhaseManifests]
) -> None:
    manifests = [m for p in example_render for m in p.manifests]
    (orchestrator,) = [c for c in containers(manifests) if c.role == "orchestrator"]
    graph = json.loads(_value(orchestrator.env, "MIGRATE_EVENT_GRAPH"))
    plugins = scan(shared_project.parent / "agents-app").plugins
    assert graph == {
        p.name: {"consumes": p.manifest.events.consumes, "produces": p.manifest.events.produces}
        for p in plugins
    }
    assert graph["Report-Writer"] == {
        "consumes": ["review.done", "research.done"],
        "produces": ["report.ready"],
    }
    assert orchestrator.env["DATABASE_URL"]["valueFrom"] == {
        "secretKeyRef": {"name": "project-database", "key": "url"}
    }
    assert _value(orchestrator.env, "DATABASE_SCHEMA") == "legacy"


def test_a_cached_plugin_points_at_the_rendered_cache(project: Path) -> None:
    configure(project, queue="kafka", cached={"summarizer": 300})
    phases = render_project(open_context(project))
    assert rule_findings(phases, "runtime-address-rendered", "runtime-env-required") == []
    manifests = [m for p in phases for m in p.manifests]
    cache = [m for m in manifests if m.kind == "Service" and m.name == "project-cache"]
    assert cache and cache[0].obj["spec"]["ports"][0]["port"] == 6379
    for container in containers(manifests):
        plugin = container.manifest.obj["metadata"].get("annotations", {}).get("migrate/plugin")
        if plugin == "summarizer":
            assert _value(container.env, "MIGRATE_CACHE_TTL_S") == "300"
            assert (
                _value(container.env, "MIGRATE_CACHE_URL")
                == "redis://project-cache.project.svc:6379/0"
            )
        else:
            assert "MIGRATE_CACHE_TTL_S" not in container.env, container.where


def test_a_cache_setting_for_an_unknown_plugin_is_refused(project: Path) -> None:
    configure(project, queue="kafka", cached={"sumarizer": 60})
    with pytest.raises(ManifestError, match=r"plugins\.sumarizer names no plugin") as caught:
        rendered(project)
    assert "summarizer" in caught.value.render()


def _deployment(component: str, env: list[dict[str, Any]]) -> Manifest:
    labels = {"app.kubernetes.io/component": component, "app.kubernetes.io/managed-by": "migrate"}
    return Manifest(
        phase=3,
        task="hand-made",
        component="workers",
        template="k8s/x.yaml.j2",
        app_namespace="project",
        obj={
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "planner-worker", "namespace": "project"},
            "spec": {
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "worker", "image": "x", "env": env}]},
                }
            },
        },
    )


def test_a_variable_the_runtime_does_not_read_is_reported() -> None:
    manifest = _deployment(
        "worker",
        [
            {"name": "MIGRATE_ROLE", "value": "worker"},
            {"name": "MIGRATE_QUEUE", "value": "kafka"},  # the runtime reads MIGRATE_BUS
            {"name": "MIGRATE_CONSUMES", "value": "plan.ready"},
        ],
    )
    assert env_errors([manifest]) == [
        "phase-3/deployment-planner-worker.yaml: container worker: sets MIGRATE_QUEUE, "
        "which the runtime does not read (migrate.runtime.settings.VARIABLES)"
    ]


def test_a_variable_of_another_role_and_a_wrong_role_are_reported() -> None:
    database = {"name": "DATABASE_URL", "value": "postgresql://x"}
    worker = _deployment("worker", [{"name": "MIGRATE_ROLE", "value": "worker"}, database])
    (error,) = env_errors([worker])
    assert "sets DATABASE_URL, which only role(s) orchestrator read, in role worker" in error
    # a plugin pod without MIGRATE_ROLE runs the default role, service: consumes nothing
    service = _deployment("plugin", [{"name": "MIGRATE_CONSUMES", "value": "plan.ready"}])
    (error,) = env_errors([service])
    assert "sets MIGRATE_CONSUMES, which only role(s) worker read, in role service" in error
    mismatch = _deployment("worker", [{"name": "MIGRATE_ROLE", "value": "orchestrator"}])
    assert "set MIGRATE_ROLE=worker" in env_errors([mismatch])[0]
    # not ours (a Redis pod): not checked
    redis = _deployment("queue", [{"name": "ANYTHING", "value": "1"}])
    assert env_errors([redis]) == [] and containers([redis]) == []


def test_a_kafka_queue_without_a_kafka_cluster_is_refused(project: Path) -> None:
    roadmap_file = project / "phases" / "roadmap.yaml"
    roadmap = yaml.safe_load(roadmap_file.read_text())
    for phase in roadmap["phases"]:
        phase["tasks"] = [
            t for t in phase["tasks"] if "kafka" not in (t.get("with") or {}).get("components", [])
        ]
        for task in phase["tasks"]:
            task["needs"] = [n for n in task.get("needs", []) if n != "event-driven-communication"]
    roadmap_file.write_text(yaml.safe_dump(roadmap, sort_keys=False))
    with pytest.raises(ManifestError, match="no task of the roadmap renders the Kafka cluster"):
        rendered(project)
    configure(project, queue="redis")
    assert env_errors(rendered(project)) == []
