"""Every pod the rendered set will run, as the security, mesh and network rules see it.

Our own workloads give their pod template as rendered. The operators make pods from
what they are given, so the pods of a `Kafka`/`KafkaNodePool` (Strimzi) and of an
`Elasticsearch`/`Kibana` (ECK) are modelled here the way the pinned operators build
them; the Helm releases' pods (Prometheus, the ingress controller, KEDA, the operators)
are known by their labels, their namespace and whether they get an Istio sidecar.

Not a rule module: the rules in podsecurity, mesh and network import it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migrate.manifests.lint import SetModel

if TYPE_CHECKING:
    from migrate.manifests.model import HelmRelease, Manifest

STRIMZI_PROVIDERS_SRC = (
    "strimzi-kafka-operator api/src/main/java/io/strimzi/plugin/security/profiles/impl/"
    "BaselinePodSecurityProvider.java, RestrictedPodSecurityProvider.java"
)
ECK_KIBANA_SRC = (
    "cloud-on-k8s v3.2.0 pkg/controller/kibana/pod.go (WithContainersSecurityContext before "
    "WithInitContainers), kibana/initcontainer/prepare_fs.go (NewInitContainer); v2.14.0 "
    "kibana/init_configuration.go (elastic-internal-init-config)"
)
ECK_ES_SRC = (
    "cloud-on-k8s pkg/controller/elasticsearch/securitycontext/securitycontext.go, "
    "nodespec/podspec.go (WithContainersSecurityContext)"
)
RESTRICTED_PROVIDERS = (
    "restricted",
    "io.strimzi.plugin.security.profiles.impl.RestrictedPodSecurityProvider",
)


@dataclass
class Pod:
    """A pod (or the set of identical pods of one owner), with the object it comes from."""

    owner: str  # how a message names it: `Deployment ns/name`, `Kafka ns/x (broker pods)`
    namespace: str
    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)  # the pod spec; {} when not modelled
    file: str = ""
    operator: str = ""  # "" (ours), "strimzi", "eck", "helm"
    source: str = ""  # the upstream code the model follows
    manifest: Manifest | None = None
    release: HelmRelease | None = None
    ports: dict[str, int] = field(default_factory=dict)  # port name -> number, extra to spec

    def port_numbers(self) -> dict[str, int]:
        found = dict(self.ports)
        for container in self.spec.get("containers") or []:
            for port in container.get("ports") or []:
                if port.get("name"):
                    found[str(port["name"])] = int(port["containerPort"])
        return found

    def env(self) -> dict[str, Any]:
        """name -> value (or the `valueFrom` mapping) over the pod's containers."""
        found: dict[str, Any] = {}
        for container in self.spec.get("containers") or []:
            for var in container.get("env") or []:
                found[str(var.get("name"))] = var.get("value", var.get("valueFrom"))
        return found


def matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels, matchExpressions) against labels; {} selects all."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != str(value):
            return False
    for expression in selector.get("matchExpressions") or []:
        key, op = expression.get("key"), expression.get("operator")
        values = [str(v) for v in expression.get("values") or []]
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def dig(tree: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(key)
    return tree


def namespace_labels(model: SetModel, namespace: str) -> dict[str, str]:
    """The rendered Namespace's labels plus the one Kubernetes sets on every namespace."""
    return model.namespace_labels(namespace) | {"kubernetes.io/metadata.name": namespace}


def injected(
    model: SetModel, namespace: str, labels: dict[str, str], annotations: dict[str, str]
) -> bool:
    """Whether Istio's webhook injects a sidecar (Istio docs, sidecar-injection: the
    pod's `sidecar.istio.io/inject` wins, then the namespace's `istio-injection` or
    `istio.io/rev`)."""
    pod = labels.get("sidecar.istio.io/inject", annotations.get("sidecar.istio.io/inject"))
    ns = model.namespace_labels(namespace)
    if str(pod).lower() == "false" or ns.get("istio-injection") == "disabled":
        return False
    if str(pod).lower() == "true":
        return True
    return ns.get("istio-injection") == "enabled" or "istio.io/rev" in ns


def is_injected(model: SetModel, pod: Pod) -> bool:
    return injected(model, pod.namespace, pod.labels, pod.annotations)


# -- our own workloads ------------------------------------------------------------------


def own_pods(model: SetModel) -> list[Pod]:
    return [
        Pod(
            owner=w.manifest.ref,
            namespace=w.manifest.namespace or "default",
            labels=w.labels,
            annotations=w.annotations,
            spec=w.pod,
            file=model.where(w.manifest),
            manifest=w.manifest,
        )
        for w in model.workloads
    ]


# -- Strimzi ------------------------------------------------------------------------------


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


# -- ECK ----------------------------------------------------------------------------------


def _version(text: str) -> tuple[int, ...]:
    digits = []
    for part in str(text).split(".")[:3]:
        number = "".join(ch for ch in part if ch.isdigit())
        digits.append(int(number) if number else 0)
    return tuple(digits)


def _merge_containers(
    user: list[dict[str, Any]], built: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """ECK's merge by name: the user's container is the base, ECK's fills what it lacks
    (the securityContext is not inherited: pod_template.go WithInitContainers)."""
    by_name = {c.get("name"): c for c in user}
    merged = [by_name.pop(c["name"], c) for c in built]
    return merged + list(by_name.values())


def eck_pods(model: SetModel) -> list[Pod]:
    release = model.release("eck-operator")
    operator = _version(release.version) if release else (2, 14, 0)
    pods = []
    for es in model.of_kind("Elasticsearch"):
        ns, version = es.namespace or "default", _version(dig(es.obj, "spec", "version") or "8")
        default: dict[str, Any] = {"privileged": False, "allowPrivilegeEscalation": False}
        if version >= (8, 0, 0):
            default["capabilities"] = {"drop": ["ALL"]}
        if version >= (8, 8, 0):
            default["runAsNonRoot"] = True
        for node_set in dig(es.obj, "spec", "nodeSets") or []:
            template = node_set.get("podTemplate") or {}
            user = template.get("spec") or {}
            spec = dict(user)
            spec["containers"] = _merge_containers(
                user.get("containers") or [], [{"name": "elasticsearch"}]
            )
            spec["initContainers"] = _merge_containers(
                user.get("initContainers") or [],
                [
                    {"name": "elastic-internal-init-filesystem"},
                    {"name": "elastic-internal-suspend"},
                ],
            )
            for key in ("containers", "initContainers"):
                spec[key] = [{"securityContext": dict(default)} | c for c in spec[key]]
            if not spec.get("securityContext") and version >= (8, 0, 0):
                spec["securityContext"] = {"fsGroup": 1000}
            meta = template.get("metadata") or {}
            pods.append(
                Pod(
                    owner=f"Elasticsearch {ns}/{es.name} (nodeSet {node_set.get('name')})",
                    namespace=ns,
                    labels=dict(meta.get("labels") or {})
                    | {
                        "common.k8s.elastic.co/type": "elasticsearch",
                        "elasticsearch.k8s.elastic.co/cluster-name": es.name,
                        "elasticsearch.k8s.elastic.co/statefulset-name": (
                            f"{es.name}-es-{node_set.get('name')}"
                        ),
                    },
                    annotations=dict(meta.get("annotations") or {}),
                    spec=spec,
                    file=model.where(es),
                    operator="eck",
                    source=ECK_ES_SRC,
                    manifest=es,
                    ports={"https": 9200, "transport": 9300},
                )
            )
    for kb in model.of_kind("Kibana"):
        ns = kb.namespace or "default"
        template = dig(kb.obj, "spec", "podTemplate") or {}
        user = template.get("spec") or {}
        spec = dict(user)
        declared = {
            str(c.get("name"))
            for key in ("containers", "initContainers")
            for c in user.get(key) or []
        }
        spec["containers"] = _merge_containers(user.get("containers") or [], [{"name": "kibana"}])
        if operator >= (3, 0, 0):
            # ECK 3 renamed it (pkg/controller/kibana/volume/volume.go InitContainerName) and
            # adds it after the default securityContext is set (pkg/controller/kibana/pod.go:
            # WithContainersSecurityContext, then WithInitContainers): it gets none, unless
            # the podTemplate declares an init container of that name
            init: dict[str, Any] = {"name": "elastic-internal-init"}
        else:
            init = {
                "name": "elastic-internal-init-config",
                "securityContext": {"privileged": False},
            }
        spec["initContainers"] = _merge_containers(user.get("initContainers") or [], [init])
        if operator >= (2, 16, 0):  # ECK 2.16 hardened Kibana: pkg/controller/kibana/pod.go
            hardened = {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "privileged": False,
                "runAsUser": 1000,
            }
            for key in ("containers", "initContainers"):
                spec[key] = [
                    c
                    if c.get("securityContext")
                    or (
                        operator >= (3, 0, 0)
                        and c["name"] == init["name"]
                        and c["name"] not in declared
                    )
                    else c | {"securityContext": hardened}
                    for c in spec[key]
                ]
            spec.setdefault(
                "securityContext", {"fsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}}
            )
        meta = template.get("metadata") or {}
        pods.append(
            Pod(
                owner=f"Kibana {ns}/{kb.name}",
                namespace=ns,
                labels=dict(meta.get("labels") or {})
                | {"common.k8s.elastic.co/type": "kibana", "kibana.k8s.elastic.co/name": kb.name},
                annotations=dict(meta.get("annotations") or {}),
                spec=spec,
                file=model.where(kb),
                operator="eck",
                source=ECK_KIBANA_SRC,
                manifest=kb,
                ports={"https": 5601},
            )
        )
    return pods


# -- Helm releases (pods known by labels, not modelled) -------------------------------------

#: chart -> (pod labels, value paths of extra pod labels, of pod annotations, ports)
CHART_PODS: dict[str, tuple[dict[str, str], tuple[str, ...], tuple[str, ...], dict[str, int]]] = {
    "kube-prometheus-stack": (
        {"app.kubernetes.io/name": "prometheus"},
        ("prometheus.prometheusSpec.podMetadata.labels",),
        ("prometheus.prometheusSpec.podMetadata.annotations",),
        {"http-web": 9090},
    ),
    "ingress-nginx": (
        {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"},
        ("controller.podLabels",),
        ("controller.podAnnotations",),
        {"http": 80, "https": 443},
    ),
    "keda": (
        {"app": "keda-operator", "app.kubernetes.io/name": "keda-operator"},
        ("podLabels.keda",),
        ("podAnnotations.keda",),
        {},
    ),
    "strimzi-kafka-operator": (
        {"name": "strimzi-cluster-operator", "strimzi.io/kind": "cluster-operator"},
        ("labels", "podLabels"),
        ("annotations", "podAnnotations"),
        {},
    ),
    "eck-operator": (
        {"control-plane": "elastic-operator"},
        ("podLabels",),
        ("podAnnotations",),
        {},
    ),
    "fluent-bit": (
        {"app.kubernetes.io/name": "fluent-bit"},
        ("podLabels",),
        ("podAnnotations",),
        {},
    ),
    "jaeger": (
        {"app.kubernetes.io/name": "jaeger", "app.kubernetes.io/component": "all-in-one"},
        ("allInOne.podLabels",),
        ("allInOne.podAnnotations",),
        {"otlp-http": 4318, "otlp-grpc": 4317},
    ),
    "istiod": (
        {"app": "istiod", "istio": "pilot"},
        (),
        (),
        {"grpc-xds": 15012, "https-webhook": 15017},
    ),
}


def release_pod(model: SetModel, release: HelmRelease) -> Pod | None:
    known = CHART_PODS.get(release.chart)
    if known is None:
        return None
    labels, label_paths, annotation_paths, ports = known
    extra_labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    for path in label_paths:
        extra_labels |= {
            k: str(v) for k, v in (dig(release.values, *path.split(".")) or {}).items()
        }
    for path in annotation_paths:
        annotations |= {k: str(v) for k, v in (dig(release.values, *path.split(".")) or {}).items()}
    return Pod(
        owner=f"HelmRelease {release.name} ({release.chart})",
        namespace=release.namespace,
        labels=extra_labels | labels | {"app.kubernetes.io/instance": release.name},
        annotations=annotations,
        file=model.release_where(release),
        operator="helm",
        release=release,
        ports=ports,
    )


def chart_pod(model: SetModel, chart: str) -> Pod | None:
    release = model.release(chart)
    return release_pod(model, release) if release else None


KUBE_DNS = Pod(
    owner="kube-dns (CoreDNS)",
    namespace="kube-system",
    labels={"k8s-app": "kube-dns"},
    operator="cluster",
    ports={"dns": 53, "dns-tcp": 53},
)


def all_pods(model: SetModel) -> list[Pod]:
    """Ours, then the operators', then the releases' (cached on the model)."""
    cached = model.__dict__.get("_lint_all_pods")
    if cached is None:
        releases = [release_pod(model, r) for r in model.releases]
        cached = (
            own_pods(model)
            + strimzi_pods(model)
            + eck_pods(model)
            + [p for p in releases if p is not None]
        )
        model.__dict__["_lint_all_pods"] = cached
    return list(cached)


def pods_in(model: SetModel, namespace: str, selector: dict[str, Any] | None) -> Iterator[Pod]:
    for pod in all_pods(model):
        if pod.namespace == namespace and pod.operator != "helm" and matches(selector, pod.labels):
            yield pod


# -- Services and hosts -----------------------------------------------------------------------


def service_targets(model: SetModel, service: Manifest, port: Any) -> list[tuple[Pod, int]]:
    """(pod, container port) a Service's `port` (name or number) reaches."""
    spec = service.obj.get("spec") or {}
    selector = spec.get("selector")
    if not selector:
        return []
    ports = spec.get("ports") or []
    chosen = next(
        (p for p in ports if port in (p.get("name"), p.get("port"), str(p.get("port")))),
        ports[0] if len(ports) == 1 and port is None else None,
    )
    if chosen is None:
        return []
    target = chosen.get("targetPort", chosen.get("port"))
    result = []
    for pod in pods_in(model, service.namespace or "default", {"matchLabels": selector}):
        number = pod.port_numbers().get(target) if isinstance(target, str) else int(target)
        if number is not None:
            result.append((pod, number))
    return result


def resolve_host(model: SetModel, host: str, port: int, namespace: str) -> list[tuple[Pod, int]]:
    """The pods behind `host:port` as a pod in `namespace` resolves it: a rendered Service,
    or one an operator or chart makes (`<kafka>-kafka-bootstrap`, `<es>-es-http`,
    `jaeger-collector`)."""
    parts = host.split(".")
    name = parts[0]
    ns = parts[1] if len(parts) > 1 and parts[1] != "svc" else namespace
    service = model.find("Service", ns, name)
    if service is not None:
        return service_targets(model, service, port)
    found = []
    for pod in all_pods(model):
        if pod.namespace != ns:
            continue
        cluster = pod.labels.get("strimzi.io/cluster")
        es = pod.labels.get("elasticsearch.k8s.elastic.co/cluster-name")
        kb = pod.labels.get("kibana.k8s.elastic.co/name")
        instance = pod.labels.get("app.kubernetes.io/instance", "")
        if (
            (
                cluster
                and name in (f"{cluster}-kafka-bootstrap", f"{cluster}-kafka-brokers")
                and pod.labels.get("strimzi.io/name") == f"{cluster}-kafka"
            )
            or (es and name == f"{es}-es-http")
            or (kb and name == f"{kb}-kb-http")
            or (pod.operator == "helm" and instance and name.startswith(instance))
        ):
            found.append((pod, port))
    return found
