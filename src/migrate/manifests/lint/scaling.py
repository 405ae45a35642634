"""Autoscalers and disruption budgets against what they scale and protect.

An HPA or ScaledObject whose target is not rendered scales nothing; two
autoscalers on one Deployment fight over its replicas; a Kafka-scaled worker
with more replicas than the partitions it reads leaves the extra consumers idle
(KEDA caps the replicas at the partitions unless `allowIdleConsumers`); a
Deployment with two or more replicas and no PodDisruptionBudget can be drained
to zero by a node upgrade.
"""

from __future__ import annotations

from collections.abc import Iterator

from migrate.manifests.lint import Finding, SetModel, rule, selects
from migrate.manifests.lint import error_at as _finding
from migrate.manifests.model import Manifest

KEDA_KAFKA = "https://keda.sh/docs/2.17/scalers/apache-kafka/"
K8S_HPA = "https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/"
K8S_PDB = "https://kubernetes.io/docs/tasks/run-application/configure-pdb/"
SCALERS = ("HorizontalPodAutoscaler", "ScaledObject")


def _target(m: Manifest) -> tuple[str, str]:
    target = (m.obj.get("spec") or {}).get("scaleTargetRef") or {}
    return str(target.get("kind", "Deployment")), str(target.get("name"))


@rule("autoscaler-target-exists", "every HPA and ScaledObject scales a rendered workload")
def autoscaler_target_exists(model: SetModel) -> Iterator[Finding]:
    for m in model.of_kind(*SCALERS):
        kind, name = _target(m)
        if model.outside(m.namespace) or model.find(kind, m.namespace, name) is not None:
            continue
        yield _finding(
            "autoscaler-target-exists",
            m,
            f"scaleTargetRef {kind} {name} is not rendered in namespace {m.namespace}: "
            "it scales nothing",
            "point scaleTargetRef at the workload's kind and name",
            K8S_HPA,
        )


@rule("one-autoscaler-per-workload", "a workload has at most one HPA or ScaledObject")
def one_autoscaler_per_workload(model: SetModel) -> Iterator[Finding]:
    owners: dict[tuple[str | None, str, str], Manifest] = {}
    for m in model.of_kind(*SCALERS):
        kind, name = _target(m)
        other = owners.setdefault((m.namespace, kind, name), m)
        if other is not m:
            yield _finding(
                "one-autoscaler-per-workload",
                m,
                f"{m.ref} and {other.ref} both scale {kind} {name}; they would fight over "
                "its replicas",
                "keep one autoscaler per workload (a ScaledObject makes its own HPA)",
                "https://keda.sh/docs/2.17/concepts/scaling-deployments/",
            )


def _partitions(model: SetModel) -> dict[tuple[str | None, str], int]:
    found = {}
    for m in model.of_kind("KafkaTopic"):
        if m.group != "kafka.strimzi.io":
            continue
        spec = m.obj.get("spec") or {}
        found[(m.namespace, str(spec.get("topicName") or m.name))] = int(spec.get("partitions", 1))
    return found


def _kafka_topics(m: Manifest) -> list[str]:
    return [
        str((t.get("metadata") or {}).get("topic"))
        for t in (m.obj.get("spec") or {}).get("triggers") or []
        if t.get("type") == "kafka" and (t.get("metadata") or {}).get("topic")
    ]


@rule("kafka-topic-exists", "every topic a ScaledObject reads has a KafkaTopic")
def kafka_topic_exists(model: SetModel) -> Iterator[Finding]:
    partitions = _partitions(model)
    if not partitions:
        return  # no topics in the set: they are made elsewhere
    for m in model.of_kind("ScaledObject"):
        missing = [t for t in _kafka_topics(m) if (m.namespace, t) not in partitions]
        if missing:
            yield _finding(
                "kafka-topic-exists",
                m,
                f"no KafkaTopic creates {', '.join(missing)} (the cluster does not create "
                "topics on use)",
                "add the type to the kafka task's `topics`, or leave it `from-plugin-events`",
                "https://strimzi.io/docs/operators/latest/deploying#using-the-topic-operator-str",
            )


@rule("scaler-max-partitions", "a Kafka-scaled workload's maximum is at most its partitions")
def scaler_max_partitions(model: SetModel) -> Iterator[Finding]:
    partitions = _partitions(model)
    for m in model.of_kind("ScaledObject"):
        topics = _kafka_topics(m)
        if not topics or any((m.namespace, t) not in partitions for t in topics):
            continue
        total = sum(partitions[(m.namespace, t)] for t in topics)
        most = (m.obj.get("spec") or {}).get("maxReplicaCount", 100)  # KEDA's default
        if isinstance(most, int) and most > total:
            yield _finding(
                "scaler-max-partitions",
                m,
                f"maxReplicaCount {most} exceeds the {total} partition(s) of "
                f"{', '.join(topics)}: one consumer per partition, the extra replicas would "
                "sit idle (KEDA stops at the partition count unless allowIdleConsumers)",
                f"set maxReplicaCount to at most {total}, or give the topics more partitions",
                KEDA_KAFKA,
            )


@rule("replicated-has-pdb", "a Deployment with 2+ replicas has a PodDisruptionBudget")
def replicated_has_pdb(model: SetModel) -> Iterator[Finding]:
    budgets = model.of_kind("PodDisruptionBudget")
    for w in model.workloads:
        m = w.manifest
        if m.kind != "Deployment" or w.min_replicas < 2 or model.outside(m.namespace):
            continue
        if any(
            b.namespace == m.namespace
            and selects((b.obj.get("spec") or {}).get("selector") or {}, w.labels)
            for b in budgets
        ):
            continue
        yield Finding(
            rule="replicated-has-pdb",
            severity="warning",
            object=m.ref,
            file=SetModel.where(m),
            message=f"runs {w.min_replicas}+ replicas and no PodDisruptionBudget selects its "
            "pods: a node drain may evict them all at once",
            fix="render a PodDisruptionBudget (maxUnavailable: 1) selecting the pod labels",
            source=K8S_PDB,
        )
