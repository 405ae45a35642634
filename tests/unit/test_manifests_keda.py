"""Workers scale on consumer lag with KEDA: ScaledObjects, the chart, the vendored CRD.

The ScaledObjects are validated offline against KEDA's own CRD schema at the
version the pinned chart installs (src/migrate/manifests/crds/keda/), so
`render` and `plan` refuse one KEDA's API server would refuse.
"""

from __future__ import annotations

import copy
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from migrate import api
from migrate.manifests.helm import CHART_VERSIONS, KEDA_APP_VERSION, KEDA_REPO
from migrate.manifests.model import Manifest, PhaseManifests
from migrate.manifests.render import render_project
from migrate.manifests.runtime_env import containers
from migrate.manifests.validate import ValidationFailed, validate
from migrate.project import open_context
from tests.unit.test_lint_wiring import rule_findings
from tests.unit.test_manifests_runtime_env import configure

CRD = files("migrate.manifests").joinpath("crds/keda/keda.sh_scaledobjects.yaml")


def _phase3(project: Path) -> list[Manifest]:
    (phase,) = render_project(open_context(project), [3])
    return list(phase.manifests)


def _phase3_of(phases: list[PhaseManifests]) -> list[Manifest]:
    (phase,) = [p for p in phases if p.phase == 3]
    return list(phase.manifests)


def _scaled(manifests: list[Manifest]) -> dict[str, Manifest]:
    return {m.name: m for m in manifests if m.kind == "ScaledObject"}


def _crd_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text(encoding="utf-8"))
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize("queue", ["kafka", "redis"])
def test_rendered_scaled_objects_validate_against_kedas_crd(project: Path, queue: str) -> None:
    configure(project, queue=queue)
    manifests = _phase3(project)
    scaled = _scaled(manifests)
    assert len(scaled) == 6
    schema = _crd_schema()
    for manifest in scaled.values():
        assert manifest.api_version == "keda.sh/v1alpha1"
        jsonschema.validate(manifest.obj, schema)  # KEDA's schema as it ships
    report = validate(manifests, "1.30")  # and migrate's stricter reading of it
    assert {m.name for m in report.crd_checked if m.kind == "ScaledObject"} == set(scaled)
    assert not {m.kind for m in report.not_checked} & {"ScaledObject"}
    checked = report.to_dict()["crd_checked"]
    schemas = {c["schema"] for c in checked if c["object"].startswith("ScaledObject ")}
    assert schemas == {f"KEDA {KEDA_APP_VERSION} CRD"}


def test_redis_triggers_read_the_lag_of_each_consumed_stream(project: Path) -> None:
    configure(project, queue="redis")
    phases = render_project(open_context(project))
    # each trigger reads the group, streams and Redis the worker uses: lint rule
    assert rule_findings(phases, "scaler-reads-worker-lag") == []
    manifests = _phase3_of(phases)
    queue = [m for m in manifests if m.kind == "Service" and m.name == "project-queue"]
    assert queue, "the queue's Redis is rendered with the workers"
    for worker in (c for c in containers(manifests) if c.role == "worker"):
        spec = _scaled(manifests)[worker.manifest.name].obj["spec"]
        assert spec["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": worker.manifest.name,
        }
        consumes = worker.env["MIGRATE_CONSUMES"]["value"].split(",")
        group = worker.env["MIGRATE_GROUP"]["value"]
        assert [t["type"] for t in spec["triggers"]] == ["redis-streams"] * len(consumes)
        assert [t["metadata"] for t in spec["triggers"]] == [
            {
                "address": "project-queue.project.svc:6379",
                "databaseIndex": "0",
                "stream": f"events.{event}",
                "consumerGroup": group,
                "lagCount": "10",
            }
            for event in consumes
        ]
        assert spec["minReplicaCount"] == 2 and spec["maxReplicaCount"] == 10


def test_kafka_triggers_never_ask_for_more_consumers_than_partitions(
    example_render: list[PhaseManifests],
) -> None:
    # triggers read the worker's topics, group and brokers; at most one consumer a
    # partition; every topic exists: lint rules over the set
    rules = ("scaler-reads-worker-lag", "scaler-max-partitions", "kafka-topic-exists")
    assert rule_findings(example_render, *rules, "bus-topic-exists") == []
    manifests = _phase3_of(example_render)
    partitions = {
        m.obj["spec"]["topicName"]: m.obj["spec"]["partitions"]
        for m in manifests
        if m.kind == "KafkaTopic"
    }
    for worker in (c for c in containers(manifests) if c.role == "worker"):
        spec = _scaled(manifests)[worker.manifest.name].obj["spec"]
        consumes = worker.env["MIGRATE_CONSUMES"]["value"].split(",")
        assert [t["metadata"]["topic"] for t in spec["triggers"]] == consumes
        for trigger in spec["triggers"]:
            assert trigger["type"] == "kafka"
            assert trigger["metadata"]["consumerGroup"] == worker.env["MIGRATE_GROUP"]["value"]
            bootstrap = worker.env["KAFKA_BOOTSTRAP_SERVERS"]["value"]
            assert trigger["metadata"]["bootstrapServers"] == bootstrap
            assert trigger["metadata"]["lagThreshold"] == "10"
        assert spec["maxReplicaCount"] <= sum(partitions[t] for t in consumes)
    planner = _scaled(manifests)["planner-worker"].obj["spec"]
    assert planner["maxReplicaCount"] == 3  # one topic of 3 partitions, though max_replicas 10


def test_the_keda_chart_comes_with_the_auto_scaling_task(
    example_render: list[PhaseManifests],
) -> None:
    (phase,) = [p for p in example_render if p.phase == 3]
    (keda,) = [r for r in phase.releases if r.chart == "keda"]
    assert keda.task == "auto-scaling" and keda.repository == KEDA_REPO
    assert keda.repository == "https://kedacore.github.io/charts"
    assert keda.version == CHART_VERSIONS["keda"] == KEDA_APP_VERSION  # appVersion = version
    assert keda.values["watchNamespace"] == "project"
    # the vendored CRD is the one that version ships, under KEDA's license
    readme = files("migrate.manifests").joinpath("crds/keda/README.md").read_text()
    assert f"kedacore/keda at v{KEDA_APP_VERSION} " in readme
    license_text = files("migrate.manifests").joinpath("crds/keda/LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0" in license_text
    assert yaml.safe_load(CRD.read_text())["metadata"]["name"] == "scaledobjects.keda.sh"


def _broken(manifest: Manifest, change: Any) -> Manifest:
    obj = copy.deepcopy(manifest.obj)
    change(obj)
    return Manifest(
        phase=manifest.phase,
        task=manifest.task,
        component=manifest.component,
        template=manifest.template,
        obj=obj,
        app_namespace=manifest.app_namespace,
    )


def test_a_broken_trigger_is_rejected_naming_the_object(
    example_render: list[PhaseManifests],
) -> None:
    manifests = _phase3_of(example_render)
    planner = _scaled(manifests)["planner-worker"]

    def misspell(obj: dict[str, Any]) -> None:
        trigger = obj["spec"]["triggers"][0]
        trigger["typ"] = trigger.pop("type")

    with pytest.raises(ValidationFailed) as caught:
        validate([_broken(planner, misspell)], "1.30")
    text = caught.value.render()
    assert "phase-3/scaledobject-planner-worker.yaml: ScaledObject project/planner-worker" in text
    assert f"(KEDA {KEDA_APP_VERSION} CRD)" in text
    assert "spec.triggers.0: 'type' is a required property" in text
    assert "'typ' was unexpected" in text

    def numbers(obj: dict[str, Any]) -> None:
        obj["spec"]["triggers"][0]["type"] = 42
        obj["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 10  # must be a string

    with pytest.raises(ValidationFailed) as caught:
        validate([_broken(planner, numbers)], "1.30")
    text = caught.value.render()
    assert "spec.triggers.0.type: 42 is not of type 'string'" in text
    assert "spec.triggers.0.metadata.lagThreshold: 10 is not of type 'string'" in text


def test_an_unserved_api_version_is_rejected(example_render: list[PhaseManifests]) -> None:
    planner = _scaled(_phase3_of(example_render))["planner-worker"]
    beta = _broken(planner, lambda obj: obj.update(apiVersion="keda.sh/v1beta1"))
    with pytest.raises(ValidationFailed, match=r"keda\.sh/v1beta1 is not a version"):
        validate([beta], "1.30")


def test_one_autoscaler_per_deployment_and_partitions_bound_kafka_workers(
    example_render: list[PhaseManifests],
) -> None:
    # the set checks moved to migrate.manifests.lint (scaling.py; tests/unit/test_lint_core.py)
    from migrate.manifests.lint import SetModel
    from migrate.manifests.lint.scaling import (
        kafka_topic_exists,
        one_autoscaler_per_workload,
        scaler_max_partitions,
    )

    manifests = _phase3_of(example_render)
    planner = _scaled(manifests)["planner-worker"]
    hpa = next(m for m in manifests if m.kind == "HorizontalPodAutoscaler")
    on_the_worker = _broken(
        hpa, lambda obj: obj["spec"]["scaleTargetRef"].update(name="planner-worker")
    )
    (twice,) = one_autoscaler_per_workload(SetModel([planner, on_the_worker]))
    assert "both scale Deployment planner-worker" in twice.message

    too_many = _broken(planner, lambda obj: obj["spec"].update(maxReplicaCount=4))
    topics = [m for m in manifests if m.kind == "KafkaTopic"]
    (over,) = scaler_max_partitions(SetModel([too_many, *topics]))
    assert "maxReplicaCount 4 exceeds the 3 partition" in over.message
    assert not list(scaler_max_partitions(SetModel([planner, *topics])))  # as rendered: fine
    assert not list(kafka_topic_exists(SetModel([too_many])))  # no KafkaTopic: no verdict
    others = [t for t in topics if t.obj["spec"]["topicName"] != "task.created"]
    (missing,) = kafka_topic_exists(SetModel([planner, *others]))
    assert "no KafkaTopic creates task.created" in missing.message


def test_render_refuses_an_invalid_scaled_object(project: Path) -> None:
    override = project / "templates" / "k8s" / "keda.yaml.j2"
    override.parent.mkdir(parents=True)
    override.write_text(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\n"
        "metadata: {name: planner-worker, namespace: project}\n"
        "spec:\n  scaleTargetRef: {name: planner-worker}\n"
        "  triggers: [{type: redis-streams, metadata: {stream: events.task.created}, "
        "lagCount: '5'}]\n"
    )
    with pytest.raises(ValidationFailed) as caught:
        api.render(project, phase=3, out=project / "out")
    text = caught.value.render()
    assert "ScaledObject project/planner-worker" in text and "'lagCount' was unexpected" in text
    assert not (project / "out").exists()
