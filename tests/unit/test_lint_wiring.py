"""The rules that used to be assertions on the example's render (issue 15, item 10):
what our containers are told (lint/wiring.py) and how a new version rolls out
(lint/rollout.py). One hand-made broken set per finding kind, and the same set fixed;
then an overridden template that breaks an invariant, reported by `plan` and `render`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate import api
from migrate.errors import UserError
from migrate.manifests import lint
from migrate.manifests.model import HelmRelease, PhaseManifests, TaskManifests
from tests.unit.test_lint_core import deployment, manifest, obj, service

NS = "app"
KAFKA = "events-kafka-bootstrap.app.svc:9092"
REDIS = "redis://queue.app.svc:6379/0"


def findings(
    rule: str, *documents: dict[str, Any], releases: tuple[HelmRelease, ...] = ()
) -> list[lint.Finding]:
    task = TaskManifests(2, "t", ("c",), tuple(manifest(d) for d in documents), releases)
    return [f for f in lint.check([PhaseManifests(2, (task,))]).findings if f.rule == rule]


def rule_findings(phases: list[PhaseManifests], *rules: str) -> list[str]:
    """The findings of `rules` over a rendered set, as lines: the old example tests assert
    this is empty where they used to assert the invariant on the render itself."""
    lint._load_rules()
    assert set(rules) <= set(lint.RULES), set(rules) - set(lint.RULES)
    return [f.line() for f in lint.check(phases).findings if f.rule in rules]


def env(**values: str) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in values.items()]


def ours(
    name: str, component: str, variables: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    """A Deployment of ours: the runtime in role `component` with the given env."""
    container = {
        "name": "main",
        "image": "registry.example.com/acme/x:1",
        "ports": [{"name": "http", "containerPort": 8080}],
        "env": variables,
        **extra,
    }
    document = deployment(name, container=container, ours=True)
    document["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] = component
    return document


WORKER_ENV = {
    "MIGRATE_ROLE": "worker",
    "MIGRATE_BUS": "kafka",
    "MIGRATE_CONSUMES": "task.created",
    "MIGRATE_PRODUCES": "plan.ready",
    "MIGRATE_GROUP": "planner-worker",
    "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
    "REDIS_URL": REDIS,
}


def worker(**changes: str | None) -> dict[str, Any]:
    values = {k: v for k, v in (WORKER_ENV | changes).items() if v is not None}
    return ours("planner-worker", "worker", env(**values))


def kafka_cluster(auto_create: bool = False) -> dict[str, Any]:
    listeners = [{"name": "plain", "port": 9092, "type": "internal", "tls": False}]
    config = {"auto.create.topics.enable": auto_create}
    return obj("Kafka", "events", {"kafka": {"listeners": listeners, "config": config}})


def queue() -> list[dict[str, Any]]:
    redis = {
        "name": "redis",
        "image": "redis:7",
        "ports": [{"name": "redis", "containerPort": 6379}],
    }
    return [
        deployment("queue", container=redis),
        obj(
            "Service",
            "queue",
            {
                "selector": {"app.kubernetes.io/name": "queue"},
                "ports": [{"name": "redis", "port": 6379, "targetPort": "redis"}],
            },
        ),
    ]


def topic(name: str) -> dict[str, Any]:
    return obj("KafkaTopic", name.replace(".", "-"), {"topicName": name, "partitions": 3})


# --- runtime-env-required ----------------------------------------------------------


def test_a_worker_without_what_its_role_needs() -> None:
    broken = findings("runtime-env-required", worker(MIGRATE_CONSUMES=None, REDIS_URL=None))
    messages = sorted(f.message for f in broken)
    assert len(messages) == 2 and all(f.severity == "error" for f in broken)
    assert "MIGRATE_CONSUMES is empty: the worker consumes nothing" in messages[0]
    assert "REDIS_URL is not set: the Kafka bus keeps idempotency keys there" in messages[1]
    assert findings("runtime-env-required", worker()) == []


def test_an_orchestrator_without_bus_database_or_graph() -> None:
    bare = ours("orch", "orchestrator", env(MIGRATE_ROLE="orchestrator"))
    found = findings("runtime-env-required", bare)
    assert {(f.severity, f.message.split(": ")[1].split()[0]) for f in found} == {
        ("error", "MIGRATE_BUS"),
        ("error", "DATABASE_URL"),
        ("warning", "MIGRATE_EVENT_GRAPH"),
    }
    fixed = ours(
        "orch",
        "orchestrator",
        [
            *env(MIGRATE_ROLE="orchestrator", MIGRATE_BUS="redis", REDIS_URL=REDIS),
            {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}},
            *env(MIGRATE_EVENT_GRAPH='{"planner": {"consumes": ["a"], "produces": []}}'),
        ],
    )
    assert findings("runtime-env-required", fixed) == []


def test_a_cached_service_without_a_redis_and_spans_that_go_nowhere() -> None:
    jaeger = HelmRelease(
        name="jaeger", chart="jaeger", version="3", repository="https://x.invalid",
        namespace="monitoring", component="c", values={}, phase=1,
    )  # fmt: skip
    cached = ours("planner", "plugin", env(MIGRATE_CACHE_TTL_S="60"))
    found = findings("runtime-env-required", cached, releases=(jaeger,))
    assert [(f.severity, "MIGRATE_CACHE_URL" in f.message) for f in found] == [
        ("error", True),
        ("warning", False),
    ]
    assert "OTEL_EXPORTER_OTLP_ENDPOINT is not set" in found[1].message
    fixed = ours(
        "planner",
        "plugin",
        env(MIGRATE_CACHE_TTL_S="60", MIGRATE_CACHE_URL=REDIS, OTEL_EXPORTER_OTLP_ENDPOINT="x"),
    )
    assert findings("runtime-env-required", fixed, releases=(jaeger,)) == []


# --- runtime-env-valid -------------------------------------------------------------


def orchestrator(graph: str) -> dict[str, Any]:
    variables = env(
        MIGRATE_ROLE="orchestrator",
        MIGRATE_BUS="redis",
        REDIS_URL=REDIS,
        DATABASE_URL="postgresql://db.app.svc/app",
        MIGRATE_EVENT_GRAPH=graph,
    )
    return ours("orch", "orchestrator", variables)


@pytest.mark.parametrize(
    ("graph", "says"),
    [
        ("not json", "MIGRATE_EVENT_GRAPH is not JSON: Expecting value"),
        ('{"p": {"consumes": 5}}', "MIGRATE_EVENT_GRAPH['p']['consumes'] must be a list"),
        ('["planner"]', "MIGRATE_EVENT_GRAPH must be a JSON object"),
        ('{"p": {"consumes": ["a b"]}}', "MIGRATE_EVENT_GRAPH['p']['consumes'] has bad event"),
    ],
)
def test_an_event_graph_the_orchestrator_refuses(graph: str, says: str) -> None:
    (found,) = findings("runtime-env-valid", orchestrator(graph))
    assert found.severity == "error"
    assert found.message.startswith(
        "container main (role orchestrator): the runtime refuses MIGRATE_EVENT_GRAPH and "
        f"exits at start: {says}"
    ), found.message
    assert '{"<plugin>": {"consumes": [' in found.fix
    # the runtime's own parser says the same (the rule calls it)
    from migrate.runtime.orchestrator import Graph, GraphError

    with pytest.raises(GraphError) as refused:
        Graph.parse(graph)
    assert found.message.endswith(str(refused.value))
    # nothing else of runtime-env-required is about the graph: no duplicate
    assert [
        f for f in findings("runtime-env-required", orchestrator(graph)) if "GRAPH" in f.message
    ] == []


def test_a_data_only_graph_is_valid_and_only_warned_about() -> None:
    assert findings("runtime-env-valid", orchestrator("{}")) == []
    graph = [
        f for f in findings("runtime-env-required", orchestrator("{}")) if "GRAPH" in f.message
    ]
    assert [f.severity for f in graph] == ["warning"]
    good = '{"planner": {"consumes": ["task.created"], "produces": ["plan.ready"]}}'
    assert findings("runtime-env-valid", orchestrator(good)) == []
    # a graph the runtime refuses is an error of its own, not also the empty-graph warning
    refused = orchestrator('{"planner": 5}')
    assert [f.severity for f in findings("runtime-env-valid", refused)] == ["error"]
    assert findings("runtime-env-required", refused) == []


def test_numbers_a_bus_and_a_redis_url_the_runtime_refuses_at_start() -> None:
    broken = worker(
        PORT="http",
        MIGRATE_MAX_ATTEMPTS="1.5",
        MIGRATE_RETRY_BASE_S="200ms",
        MIGRATE_CLAIM_IDLE_MS="30s",
        REDIS_URL="queue.app.svc:6379",
    )
    found = findings("runtime-env-valid", broken)
    assert {f.message.split(" refuses ")[1].split()[0] for f in found} == {
        "PORT",
        "MIGRATE_MAX_ATTEMPTS",
        "MIGRATE_RETRY_BASE_S",
        "MIGRATE_CLAIM_IDLE_MS",
        "REDIS_URL",
    }
    assert all(f.severity == "error" for f in found)
    redis = next(f for f in found if "REDIS_URL" in f.message)
    assert "at every connect, so it never consumes" in redis.message  # a worker starts
    assert "is not a Redis URL" in redis.message
    assert findings("runtime-env-valid", worker(PORT="9000", MIGRATE_RETRY_BASE_S="0.5")) == []

    # a service: its port out of range, a bus that is not one, a cache TTL that is no number
    service = ours(
        "planner", "plugin", env(PORT="70000", MIGRATE_BUS="rabbitmq", MIGRATE_CACHE_TTL_S="1m")
    )
    found = findings("runtime-env-valid", service)
    assert sorted(f.message.split("exits at start: ")[1] for f in found) == [
        "MIGRATE_BUS='rabbitmq': set it to redis or kafka (bus.connect)",
        "bind() refuses it: port must be 0-65535",
        "int() refuses it: invalid literal for int() with base 10: '1m'",
    ]
    # a value from a Secret is not known, and a variable its role does not parse not judged
    secret = {"name": "PORT", "valueFrom": {"secretKeyRef": {"name": "s", "key": "port"}}}
    other = ours("planner", "plugin", [secret, *env(MIGRATE_MAX_ATTEMPTS="many")])
    assert findings("runtime-env-valid", other) == []


# --- runtime-address-rendered ------------------------------------------------------


def test_an_address_that_reaches_no_rendered_service() -> None:
    typo = worker(REDIS_URL="redis://qeue.app.svc:6379/0")
    (missing,) = findings("runtime-address-rendered", typo, *queue(), kafka_cluster())
    assert "REDIS_URL=redis://qeue.app.svc:6379/0: no rendered Service app/qeue" in missing.message
    wrong_port = worker(REDIS_URL="redis://queue.app.svc:6380/0")
    (port,) = findings("runtime-address-rendered", wrong_port, *queue(), kafka_cluster())
    assert "Service app/queue has no port 6380" in port.message
    no_cluster = findings("runtime-address-rendered", worker(), *queue())
    assert [f.message.split(": ")[1].split("=")[0] for f in no_cluster] == [
        "KAFKA_BOOTSTRAP_SERVERS"
    ]
    assert findings("runtime-address-rendered", worker(), *queue(), kafka_cluster()) == []
    # an address outside the cluster is not judged
    outside = worker(REDIS_URL="redis://redis.example.com:6379/0")
    assert findings("runtime-address-rendered", outside, kafka_cluster()) == []


def test_an_orchestrator_with_no_worker_whose_bus_is_not_rendered_is_an_error() -> None:
    """No worker, so nothing consumes the bus, but the orchestrator's /readyz needs it: an
    unrendered queue is an error, not the warning it once was (a data-only project)."""
    variables = env(
        MIGRATE_ROLE="orchestrator", MIGRATE_BUS="redis", REDIS_URL=REDIS, MIGRATE_EVENT_GRAPH="{}"
    )
    orchestrator = ours("orch", "orchestrator", variables)
    (missing,) = findings("runtime-address-rendered", orchestrator)
    assert missing.severity == "error"
    assert (
        "REDIS_URL=redis://queue.app.svc:6379/0: no rendered Service app/queue" in missing.message
    )
    assert findings("runtime-address-rendered", orchestrator, *queue()) == []
    # and the empty graph stays a warning of its own
    graph = [f for f in findings("runtime-env-required", orchestrator) if "GRAPH" in f.message]
    assert [f.severity for f in graph] == ["warning"]


def test_a_kafka_port_no_listener_serves() -> None:
    wrong = worker(KAFKA_BOOTSTRAP_SERVERS="events-kafka-bootstrap.app.svc:9094")
    (found,) = findings("runtime-address-rendered", wrong, *queue(), kafka_cluster())
    assert "serves" in found.message and "not 9094" in found.message


# --- runtime-port-served -----------------------------------------------------------


def test_probes_services_and_scrapes_on_a_port_the_runtime_does_not_listen_on() -> None:
    probe = {"httpGet": {"path": "/healthz", "port": "admin"}}
    broken = ours(
        "planner",
        "plugin",
        env(PORT="8080"),
        ports=[{"name": "http", "containerPort": 8080}, {"name": "admin", "containerPort": 9000}],
        livenessProbe=probe,
    )
    broken["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] = "9000"
    svc = service("planner", {"app.kubernetes.io/name": "planner"}, target="admin")
    found = findings("runtime-port-served", broken, svc)
    assert sorted(f.message.split(": ")[1].split(" sends")[0] for f in found) == [
        "Service app/planner port 80",
        "its livenessProbe",
        "the pod annotation prometheus.io/port",
    ]
    fixed = copy.deepcopy(broken)
    fixed["spec"]["template"]["spec"]["containers"][0]["env"] = env(PORT="9000")
    assert findings("runtime-port-served", fixed, svc) == []


# --- scaler-reads-worker-lag -------------------------------------------------------


def scaled(**metadata: str) -> dict[str, Any]:
    trigger = {
        "bootstrapServers": KAFKA,
        "consumerGroup": "planner-worker",
        "topic": "task.created",
        "lagThreshold": "10",
    } | metadata
    return obj(
        "ScaledObject",
        "planner-worker",
        {
            "scaleTargetRef": {"name": "planner-worker"},
            "minReplicaCount": 0,
            "maxReplicaCount": 3,
            "triggers": [{"type": "kafka", "metadata": trigger}],
        },
    )


def test_a_scaler_that_reads_another_group_or_topic() -> None:
    (group,) = findings("scaler-reads-worker-lag", worker(), scaled(consumerGroup="planner"))
    assert "consumerGroup planner is not the worker's group planner-worker" in group.message
    wrong_topic = findings("scaler-reads-worker-lag", worker(), scaled(topic="plan.ready"))
    assert {f.severity for f in wrong_topic} == {"error", "warning"}
    assert "topic plan.ready is not one the worker consumes" in wrong_topic[0].message
    assert "no trigger reads the lag of task.created" in wrong_topic[1].message
    redis_worker = worker(MIGRATE_BUS="redis")
    (bus,) = findings("scaler-reads-worker-lag", redis_worker, scaled())
    assert "a kafka trigger on a worker whose MIGRATE_BUS is 'redis'" in bus.message
    assert findings("scaler-reads-worker-lag", worker(), scaled()) == []


def test_a_redis_streams_scaler_reads_the_workers_stream_and_redis() -> None:
    def streams(stream: str, address: str) -> dict[str, Any]:
        document = scaled()
        document["spec"]["triggers"] = [
            {
                "type": "redis-streams",
                "metadata": {
                    "address": address,
                    "stream": stream,
                    "consumerGroup": "planner-worker",
                    "lagCount": "10",
                },
            }
        ]
        return document

    redis_worker = worker(MIGRATE_BUS="redis")
    broken = findings(
        "scaler-reads-worker-lag", redis_worker, streams("task.created", "other.app.svc:6379")
    )
    assert {f.message.split(": ")[1].split(" ")[0] for f in broken if f.severity == "error"} == {
        "stream",
        "address",
    }
    fixed = streams("events.task.created", "queue.app.svc:6379")
    assert findings("scaler-reads-worker-lag", redis_worker, fixed) == []


# --- bus-topic-exists --------------------------------------------------------------


def test_a_kafka_worker_whose_topics_are_not_created() -> None:
    made = [topic("task.created"), topic("plan.ready")]
    (missing,) = findings("bus-topic-exists", worker(), kafka_cluster(), *made)
    assert "topic(s) migrate.settled, task.created.dlq have no KafkaTopic" in missing.message
    every = [*made, topic("task.created.dlq"), topic("migrate.settled")]
    assert findings("bus-topic-exists", worker(), kafka_cluster(), *every) == []
    # a cluster that creates topics on use, and no KafkaTopic: no verdict
    assert findings("bus-topic-exists", worker(), kafka_cluster(auto_create=True)) == []


# --- rollout -----------------------------------------------------------------------


def track(name: str, colour: str) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": name, "migrate/track": colour}
    document = deployment(f"{name}-{colour}", labels=labels)
    document["spec"]["selector"]["matchLabels"] = labels
    return document


def test_a_service_that_sends_to_both_tracks() -> None:
    tracks = [track("planner", "blue"), track("planner", "green")]
    annotated = {"annotations": {"migrate/active-track": "blue"}}
    both = obj(
        "Service", "planner", {"selector": {"app.kubernetes.io/name": "planner"}}, **annotated
    )
    (found,) = findings("blue-green-one-track", both, *tracks)
    assert "matches the pods of tracks blue, green" in found.message
    green = copy.deepcopy(both)
    green["spec"]["selector"]["migrate/track"] = "green"
    (wrong,) = findings("blue-green-one-track", green, *tracks)
    assert "annotated migrate/active-track: blue but selects the green track" in wrong.message
    blue = copy.deepcopy(both)
    blue["spec"]["selector"]["migrate/track"] = "blue"
    assert findings("blue-green-one-track", blue, *tracks) == []


def test_replicas_set_on_an_autoscaled_workload() -> None:
    hpa = obj(
        "HorizontalPodAutoscaler",
        "web",
        {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2},
    )
    (found,) = findings("autoscaler-owns-replicas", deployment("web", replicas=2), hpa)
    assert found.severity == "warning" and "every apply resets" in found.message
    fixed = deployment("web")
    del fixed["spec"]["replicas"]
    assert findings("autoscaler-owns-replicas", fixed, hpa) == []


# --- an overridden template --------------------------------------------------------


def overridden(project: Path, template: str, shipped: str, by_hand: str) -> Path:
    """The project's own templates/k8s/`template`: the shipped one with its one line
    `shipped` written `by_hand` instead."""
    from migrate.resources import resource_path

    text = (resource_path("templates") / "k8s" / template).read_text()
    assert text.count(shipped) == 1
    override = project / "templates" / "k8s" / template
    override.parent.mkdir(parents=True, exist_ok=True)
    override.write_text(text.replace(shipped, by_hand))
    return override


def test_an_overridden_template_that_breaks_an_invariant_fails_plan_and_render(
    project: Path,
) -> None:
    """A project's templates/k8s override is checked as the shipped templates are: here
    its keda.yaml.j2 writes the triggers by hand with a consumer group of its own, so KEDA
    reads the lag of a group no worker consumes with (the old test read the shipped
    template's render, and could not see this)."""
    by_hand = (
        "  triggers:\n"
        "{%- for t in worker.triggers %}\n"
        "    - type: {{ t.type | tojson }}\n"
        "      metadata: {{ dict(t.metadata, consumerGroup='legacy-consumers') | tojson }}\n"
        "{%- endfor %}"
    )
    override = overridden(
        project, "keda.yaml.j2", "  triggers: {{ worker.triggers | tojson }}", by_hand
    )

    report = api.plan(project).lint
    assert report is not None
    broken = [f for f in report.errors if f.rule == "scaler-reads-worker-lag"]
    assert len({f.object for f in broken}) == 6, [f.line() for f in report.errors]  # 6 workers
    assert "consumerGroup legacy-consumers is not the worker's group planner-worker" in (
        next(f.message for f in broken if f.object.endswith("/planner-worker"))
    )
    with pytest.raises(UserError, match="scaler-reads-worker-lag") as caught:
        api.render(project, out=project / "out")
    assert "legacy-consumers" in caught.value.render()
    assert not (project / "out").exists()
    # the shipped template passes: the finding is the override's
    override.unlink()
    again = api.plan(project).lint
    assert again is not None and again.errors == []


def test_an_overridden_orchestrator_template_with_a_graph_the_runtime_refuses(
    project: Path,
) -> None:
    """A project's templates/k8s/orchestrator.yaml.j2 that writes its own event graph, one
    the orchestrator refuses at start: `plan` reports it, `render` writes nothing."""
    by_hand = (
        "          env:\n"
        "{%- for e in orchestrator.env %}\n"
        '            - {{ (dict(e, value=\'{"planner": ["task.created"]}\') '
        "if e.name == 'MIGRATE_EVENT_GRAPH' else e) | tojson }}\n"
        "{%- endfor %}"
    )
    override = overridden(
        project, "orchestrator.yaml.j2", "          env: {{ orchestrator.env | tojson }}", by_hand
    )

    report = api.plan(project).lint
    assert report is not None
    (broken,) = [f for f in report.errors if f.rule == "runtime-env-valid"]
    assert broken.object.endswith("-orchestrator") and broken.file.startswith("phase-3/")
    assert "MIGRATE_EVENT_GRAPH['planner'] must be {" in broken.message
    with pytest.raises(UserError, match="runtime-env-valid"):
        api.render(project, out=project / "out")
    assert not (project / "out").exists()
    override.unlink()
    again = api.plan(project).lint
    assert again is not None and again.errors == []


def test_the_example_with_either_bus_has_no_finding_of_these_rules(project: Path) -> None:
    from tests.unit.test_manifests_runtime_env import configure

    mine = {
        "runtime-env-required",
        "runtime-env-valid",
        "runtime-address-rendered",
        "runtime-port-served",
        "scaler-reads-worker-lag",
        "bus-topic-exists",
        "blue-green-one-track",
        "autoscaler-owns-replicas",
    }
    for queue_kind in ("kafka", "redis"):
        configure(project, queue=queue_kind, cached={"summarizer": 60})
        report = api.plan(project).lint
        assert report is not None
        assert [f.line() for f in report.findings if f.rule in mine] == [], queue_kind
    assert mine <= set(lint.RULES)
    config = yaml.safe_load((project / "migrate.yaml").read_text())
    assert config["plugins"] == {"summarizer": {"cache_ttl_s": 60}}


def test_the_numbers_runtime_env_valid_knows_are_those_the_runtime_parses() -> None:
    """`wiring.NUMBERS` is kept by hand: every `settings.get_int/get_float("NAME")` of the
    runtime is in it, with the parser the runtime uses and the roles that run that code
    (host.py: every role; concerns.py wraps a plugin's handler: service and worker)."""
    import ast

    import migrate.runtime
    from migrate.manifests.lint import wiring

    roles_of_file = {
        "host.py": {"service", "worker", "orchestrator"},
        "worker.py": {"worker"},
        "orchestrator.py": {"orchestrator"},
        "concerns.py": {"service", "worker"},
    }
    parsers = {"get_int": int, "get_float": float}
    parsed: dict[tuple[str, object], set[str]] = {}
    for path in Path(migrate.runtime.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in parsers
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                assert path.name in roles_of_file, f"{path.name} parses {node.args[0].value}"
                key = (node.args[0].value, parsers[node.func.attr])
                parsed.setdefault(key, set()).update(roles_of_file[path.name])
    known = {(name, parse): set(roles) for name, roles, parse in wiring.NUMBERS}
    assert parsed == known
