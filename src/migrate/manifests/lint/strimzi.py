"""The pods the Strimzi operator makes from a `Kafka` and its `KafkaNodePool`s (broker
pods, the entity operator pod), with the securityContext its pod security provider
gives them. Not a rule module: `operated.all_pods` gathers them.
"""

from __future__ import annotations

from typing import Any

from migrate.manifests.lint import SetModel
from migrate.manifests.lint.pods import Pod, dig

STRIMZI_PROVIDERS_SRC = (
    "strimzi-kafka-operator api/src/main/java/io/strimzi/plugin/security/profiles/impl/"
    "BaselinePodSecurityProvider.java, RestrictedPodSecurityProvider.java"
)
RESTRICTED_PROVIDERS = (
    "restricted",
    "io.strimzi.plugin.security.profiles.impl.RestrictedPodSecurityProvider",
)


def strimzi_restricted(model: SetModel) -> bool:
    """Whether the Strimzi operator runs with the restricted pod security provider."""
    release = model.release("strimzi-kafka-operator")
    if release is None:
        return False
    for var in release.values.get("extraEnvs") or []:
        if var.get("name") == "STRIMZI_POD_SECURITY_PROVIDER_CLASS":
            return str(var.get("value")) in RESTRICTED_PROVIDERS
    return False


def _strimzi_container(
    name: str, key: str, restricted: bool, *templates: dict[str, Any]
) -> dict[str, Any]:
    # the provider returns the user's securityContext when a template has one (the node
    # pool's before the Kafka's), else nothing (baseline) or the restricted one
    context = next(
        (dig(t, key, "securityContext") for t in templates if dig(t, key, "securityContext")),
        None,
    )
    if context is None and restricted:
        context = {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
            "capabilities": {"drop": ["ALL"]},
        }
    return {"name": name, **({"securityContext": context} if context else {})}


def strimzi_pods(model: SetModel) -> list[Pod]:
    restricted = strimzi_restricted(model)
    pods = []
    for kafka in model.of_kind("Kafka"):
        spec = kafka.obj.get("spec") or {}
        cluster, ns = kafka.name, kafka.namespace or "default"
        base = {"strimzi.io/cluster": cluster, "strimzi.io/kind": "Kafka"}
        listeners = {
            str(item.get("name")): int(item.get("port", 0))
            for item in dig(spec, "kafka", "listeners") or []
        }
        ports = {"tcp-ctrlplane": 9090, "tcp-replication": 9091, "tcp-kafkaagent": 8443} | listeners
        if dig(spec, "kafka", "metricsConfig"):
            ports["tcp-prometheus"] = 9404
        pools = [
            p
            for p in model.of_kind("KafkaNodePool")
            if p.namespace == kafka.namespace
            and dig(p.obj, "metadata", "labels", "strimzi.io/cluster") == cluster
        ]
        kafka_template = dig(spec, "kafka", "template") or {}
        for pool in pools or [kafka]:
            is_pool = pool.kind == "KafkaNodePool"
            template = (dig(pool.obj, "spec", "template") or {}) if is_pool else {}
            merged_pod = (kafka_template.get("pod") or {}) | (template.get("pod") or {})
            meta = merged_pod.get("metadata") or {}
            containers = [
                _strimzi_container("kafka", "kafkaContainer", restricted, template, kafka_template)
            ]
            pod_spec: dict[str, Any] = {"containers": containers}
            if merged_pod.get("securityContext"):
                pod_spec["securityContext"] = merged_pod["securityContext"]
            if dig(spec, "kafka", "rack"):
                pod_spec["initContainers"] = [
                    _strimzi_container(
                        "kafka-init", "initContainer", restricted, template, kafka_template
                    )
                ]
            what = f"broker pods of pool {pool.name}" if is_pool else "broker pods"
            labels = base | {"strimzi.io/name": f"{cluster}-kafka"}
            if is_pool:
                labels["strimzi.io/pool-name"] = pool.name
            pods.append(
                Pod(
                    owner=f"Kafka {ns}/{cluster} ({what})",
                    namespace=ns,
                    labels=dict(meta.get("labels") or {}) | labels,
                    annotations=dict(meta.get("annotations") or {}),
                    spec=pod_spec,
                    file=model.where(pool),
                    operator="strimzi",
                    source=STRIMZI_PROVIDERS_SRC,
                    manifest=pool,
                    ports=ports,
                )
            )
        entity = spec.get("entityOperator")
        if entity is not None:
            template = entity.get("template") or {}
            meta = dig(template, "pod", "metadata") or {}
            containers = [
                _strimzi_container(name, key, restricted, template)
                for name, key, present in (
                    ("topic-operator", "topicOperatorContainer", "topicOperator" in entity),
                    ("user-operator", "userOperatorContainer", "userOperator" in entity),
                )
                if present
            ]
            pod_spec = {"containers": containers}
            if dig(template, "pod", "securityContext"):
                pod_spec["securityContext"] = dig(template, "pod", "securityContext")
            pods.append(
                Pod(
                    owner=f"Kafka {ns}/{cluster} (entity operator pod)",
                    namespace=ns,
                    labels=dict(meta.get("labels") or {})
                    | base
                    | {"strimzi.io/name": f"{cluster}-entity-operator"},
                    annotations=dict(meta.get("annotations") or {}),
                    spec=pod_spec,
                    file=model.where(kafka),
                    operator="strimzi",
                    source=STRIMZI_PROVIDERS_SRC,
                    manifest=kafka,
                )
            )
    return pods
