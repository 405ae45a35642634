"""The decisions behind the rendered objects (migrate.manifests.facts), made in Python.

Hand-built options and plugins, no project: each decision the templates used
to make on their own (worker bounds, autoscaler targets, the queue, TLS, the
environment) is checked where it is made. The last tests show that templates
written against the older variables and macros still render the same objects.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import jinja2
import pytest

from migrate.manifests.components import Options
from migrate.manifests.facts import (
    Facts,
    Names,
    PluginInput,
    Settings,
    build,
)
from migrate.manifests.model import PhaseManifests
from migrate.manifests.render import render_project
from migrate.project import open_context
from migrate.resources import resource_path

NAMES = Names("shop", "shop-ns")
SETTINGS = Settings(otlp_endpoint="http://otel:4318", schema="legacy")
EVERYTHING = frozenset({"workloads", "orchestrator", "workers", "kafka", "hpa", "redis"})


def _plugin(name: str, consumes: tuple[str, ...] = (), cache_ttl_s: int = 0) -> PluginInput:
    return PluginInput(
        name=name,
        image=f"reg/{name}:abc",
        version="1.2",
        description="",
        entrypoint="plugin:handle",
        consumes=consumes,
        produces=("done",),
        cache_ttl_s=cache_ttl_s,
        track_images={"blue": f"reg/{name}:old", "green": f"reg/{name}:new"},
        active_track="green",
    )


def _facts(options: Options, *plugins: PluginInput, settings: Settings = SETTINGS) -> Facts:
    return build(
        options, NAMES, settings, list(plugins), event_graph="{}", orchestrator_image="reg/o:1"
    )


def test_a_kafka_worker_never_has_more_replicas_than_partitions_it_reads() -> None:
    options = Options(EVERYTHING, partitions=3, min_replicas=2, max_replicas=10)
    facts = _facts(options, _plugin("one", ("a",)), _plugin("two", ("a", "b", "c", "d")))
    one, two = facts.workers
    assert (one.min_replicas, one.max_replicas, one.disruption_budget) == (2, 3, True)
    assert (two.min_replicas, two.max_replicas) == (2, 10)
    assert one.replicas is None  # KEDA owns the count
    assert [t["metadata"]["topic"] for t in two.triggers] == ["a", "b", "c", "d"]
    assert {t["type"] for t in two.triggers} == {"kafka"}
    # one partition: KEDA's minimum follows the ceiling down, and a budget would block drains
    tight = _facts(Options(EVERYTHING, partitions=1, min_replicas=2), _plugin("one", ("a",)))
    (worker,) = tight.workers
    assert (worker.min_replicas, worker.max_replicas, worker.disruption_budget) == (1, 1, False)


def test_a_redis_worker_reads_streams_and_is_not_capped() -> None:
    options = Options(EVERYTHING, queue="redis", partitions=1, max_replicas=7, target_lag=5)
    (worker,) = _facts(options, _plugin("one", ("a", "b"))).workers
    assert worker.max_replicas == 7
    assert worker.triggers[1] == {
        "type": "redis-streams",
        "metadata": {
            "address": "shop-queue.shop-ns.svc:6379",
            "databaseIndex": "0",
            "stream": "events.b",
            "consumerGroup": "one-worker",
            "lagCount": "5",
        },
    }
    env = {e["name"]: e.get("value") for e in worker.env}
    assert env["MIGRATE_BUS"] == "redis" and "KAFKA_BOOTSTRAP_SERVERS" not in env
    assert env["REDIS_URL"] == "redis://shop-queue.shop-ns.svc:6379/0"


def test_without_autoscalers_the_deployments_say_their_replicas() -> None:
    options = Options(frozenset({"workloads", "orchestrator", "workers"}), replicas=3)
    facts = _facts(options, _plugin("one", ("a",)))
    (plugin,) = facts.plugins
    assert {t.name: t.replicas for t in plugin.deployments} == {"blue": 1, "green": 3}
    assert facts.orchestrator.replicas == 2 and facts.workers[0].replicas == 1
    assert not facts.keda  # no hpa component: nothing scales the workers


def test_autoscalers_scale_what_the_service_sends_to() -> None:
    blue_green = _facts(Options(EVERYTHING), _plugin("Report_Writer"))
    assert [(a.name, a.deployment) for a in blue_green.autoscaled] == [
        ("shop-orchestrator", "shop-orchestrator"),
        ("report-writer", "report-writer-green"),
    ]
    (plugin,) = blue_green.plugins
    assert plugin.selector == {"app.kubernetes.io/name": "report-writer", "migrate/track": "green"}
    assert [t.replicas for t in plugin.deployments] == [1, None]  # idle track: one warm pod
    rolling = _facts(Options(frozenset({"workloads", "hpa"}), strategy="rolling"), _plugin("p"))
    (plugin,) = rolling.plugins
    assert [(a.name, a.deployment) for a in rolling.autoscaled] == [("p", "p")]
    assert [(t.name, t.deployment, t.image) for t in plugin.deployments] == [
        (None, "p", "reg/p:abc")
    ]
    assert plugin.selector == {"app.kubernetes.io/name": "p"}
    assert "migrate/active-track" not in plugin.service_annotations


def test_the_queue_exists_with_the_orchestrator_or_workers_that_consume() -> None:
    # nothing consumes, but the orchestrator's /readyz needs its bus: its template renders it
    idle = _facts(Options(EVERYTHING), _plugin("p"))
    assert idle.queue is not None and idle.queue_with == "orchestrator"
    assert not idle.keda_reads_queue
    assert _facts(Options(frozenset({"hpa"})), _plugin("p", ("a",))).queue is None
    alone = _facts(Options(frozenset({"workers"})), _plugin("p"))
    assert alone.queue is None  # no orchestrator, nothing consumes
    facts = _facts(Options(EVERYTHING), _plugin("p", ("a",)))
    assert facts.queue is not None and facts.queue.name == "shop-queue"
    assert facts.queue_with == "workers"
    assert facts.keda and not facts.keda_reads_queue  # Kafka: KEDA reads the brokers
    redis = _facts(Options(EVERYTHING, queue="redis"), _plugin("p", ("a",)))
    assert redis.keda_reads_queue
    assert redis.redis["queue"].args != redis.redis["cache"].args  # no eviction on the queue


def test_the_quota_counts_the_queue_wherever_it_is_rendered() -> None:
    from migrate.manifests.sizing import pod_groups, resource_quota

    def queues(components: set[str], consumes: list[str]) -> int:
        groups = pod_groups(Options(frozenset(components)), [{"name": "p", "consumes": consumes}])
        return sum(g.count for g in groups if g.what == "queue (Redis)")

    assert queues({"orchestrator"}, []) == 1  # a data-only project: the orchestrator's bus
    assert queues({"orchestrator", "workers"}, ["a"]) == 1
    assert queues({"workers"}, []) == 0 and queues({"workloads"}, ["a"]) == 0
    plugins = [{"name": "p", "consumes": []}]
    alone = resource_quota(Options(frozenset({"orchestrator"})), plugins)
    # the orchestrator's Service, the queue's and its headless one (+2 of headroom)
    assert alone["services"] == "5"


@pytest.mark.parametrize(
    ("ingress", "tls", "port", "issuer"),
    [
        ({}, False, 80, None),
        ({"cluster_issuer": "le"}, False, 80, None),  # no host: nothing to issue for
        ({"host": "a.example.com", "cluster_issuer": "le"}, True, 443, "le"),
        ({"host": "a.example.com", "tls_secret": "mine"}, True, 443, None),
        ({"host": "a.example.com"}, False, 80, None),
    ],
)
def test_the_entry_point_serves_tls_only_for_a_host_with_a_certificate(
    ingress: dict[str, str], tls: bool, port: int, issuer: str | None
) -> None:
    settings = Settings(otlp_endpoint="x", schema="s", **ingress)
    entry = _facts(Options(EVERYTHING), _plugin("p"), settings=settings).entry
    assert (entry.tls, entry.port, entry.cluster_issuer) == (tls, port, issuer)
    assert entry.tls_secret == ingress.get("tls_secret", "shop-tls")


def test_a_plugin_is_reached_at_its_host_and_path() -> None:
    (plugin,) = _facts(Options(EVERYTHING), _plugin("web_researcher")).plugins
    assert plugin.host == "web-researcher.shop-ns.svc.cluster.local"
    assert plugin.path_prefix == "/plugins/web-researcher"
    assert plugin.ingress_path == "/plugins/web-researcher(/|$)(.*)"
    assert plugin.route == "shop-plugins-web-researcher"


# -- templates written against the older variables --------------------------------------

MACROS = """\
{%- import "k8s/_common.j2" as c -%}
{%- set service = [] -%}
{{- c.add_base_env(service, names, target, "service", plugin.label, plugin.version) -}}
{{- c.add_cache_env(service, names, options, plugin) -}}
{%- set worker = [] -%}
{{- c.add_base_env(worker, names, target, "worker", plugin.worker, plugin.version) -}}
{%- set _ = worker.extend([{"name": "MIGRATE_CONSUMES", "value": plugin.consumes | join(",")},
                           {"name": "MIGRATE_PRODUCES", "value": plugin.produces | join(",")},
                           {"name": "MIGRATE_GROUP", "value": plugin.worker}]) -%}
{{- c.add_bus_env(worker, names, options) -}}
{{- c.add_cache_env(worker, names, options, plugin) -}}
{%- set orchestrator = [] -%}
{{- c.add_base_env(orchestrator, names, target, "orchestrator", names.orchestrator) -}}
{{- c.add_database_env(orchestrator, names, target) -}}
{%- set _ = orchestrator.append({"name": "MIGRATE_EVENT_GRAPH", "value": "{}"}) -%}
{{- c.add_bus_env(orchestrator, names, options) -}}
{{ {"service": service, "worker": worker, "orchestrator": orchestrator} | tojson }}
"""


@pytest.mark.parametrize(
    ("queue", "cache_ttl_s"), [("kafka", 0), ("redis", 0), ("kafka", 30), ("redis", 5)]
)
def test_the_env_macros_kept_for_project_templates_agree_with_the_facts(
    queue: str, cache_ttl_s: int
) -> None:
    import json

    options = Options(EVERYTHING, queue=queue)
    facts = _facts(options, _plugin("one", ("a", "b"), cache_ttl_s=cache_ttl_s))
    (plugin,) = facts.plugins
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resource_path("templates"))),
        undefined=jinja2.StrictUndefined,
    )
    target: dict[str, Any] = {"monitoring": {"otlp_endpoint": SETTINGS.otlp_endpoint}}
    target["schema"] = SETTINGS.schema
    text = env.from_string(MACROS).render(
        names=NAMES.to_dict(), target=target, options=options, plugin=plugin
    )
    assert json.loads(text) == {
        "service": plugin.env,
        "worker": facts.workers[0].env,
        "orchestrator": facts.orchestrator.env,
    }


#: hpa.yaml.j2 as it was before the decisions moved to Python
OLD_HPA = """\
{%- set targets = [] %}
{%- if options.has("orchestrator") %}
{%- set _ = targets.append({"name": names.orchestrator, "deployment": names.orchestrator,
                            "component": "orchestrator"}) %}
{%- endif %}
{%- if options.has("workloads") %}
{%- for plugin in plugins %}
{%- set _ = targets.append({"name": plugin.label, "deployment": plugin.active_deployment
    if options.strategy == "blue-green" else plugin.label, "component": "plugin"}) %}
{%- endfor %}
{%- endif %}
{%- for t in targets %}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ t.name | tojson }}
  namespace: {{ names.namespace | tojson }}
  labels: {"app.kubernetes.io/name": {{ t.name | tojson }},
           "app.kubernetes.io/component": {{ t.component | tojson }},
           "app.kubernetes.io/part-of": {{ project | tojson }},
           "app.kubernetes.io/managed-by": "migrate"}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: {{ t.deployment | tojson }}}
  minReplicas: {{ options.min_replicas }}
  maxReplicas: {{ options.max_replicas }}
  metrics:
    - type: Resource
      resource: {name: cpu, target: {type: Utilization,
                 averageUtilization: {{ options.target_cpu_percent }}}}
  behavior:
    scaleDown: {stabilizationWindowSeconds: 300}
{%- endfor %}
{%- for plugin in plugins if plugin.consumes %}
{%- set worker_max = [options.max_replicas, options.partitions * plugin.consumes | length] | min %}
{%- endfor %}
{%- if plugins | selectattr("consumes") | list %}{% endif %}
"""


def test_a_project_template_written_against_the_old_variables_renders_the_same(
    project: Path, example_render: list[PhaseManifests]
) -> None:
    override = project / "templates" / "k8s" / "hpa.yaml.j2"
    override.parent.mkdir(parents=True)
    override.write_text(textwrap.dedent(OLD_HPA))
    (phase3,) = render_project(open_context(project), [3])

    def hpas(manifests: Any) -> dict[str, dict[str, Any]]:
        return {m.name: m.obj for m in manifests if m.kind == "HorizontalPodAutoscaler"}

    (expected,) = [p for p in example_render if p.phase == 3]
    assert hpas(phase3.manifests) == hpas(expected.manifests)
    assert len(hpas(phase3.manifests)) == 7  # the orchestrator and six plugins
