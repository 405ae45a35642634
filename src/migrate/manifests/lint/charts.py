"""The pods of the Helm releases (Prometheus, the ingress controller, KEDA, the
operators, Jaeger, istiod): not rendered, so known by the labels, annotations and
ports their charts give them from the release's values. Not a rule module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrate.manifests.lint import SetModel
from migrate.manifests.lint.pods import Pod, dig

if TYPE_CHECKING:
    from migrate.manifests.model import HelmRelease

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
