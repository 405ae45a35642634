"""Helm releases Pulumi installs: operators and the monitoring stack, pinned.

Chart versions are pinned so that a plan made today installs the same thing
next month; bump them here (and in docs/manifests.md) on purpose.
"""

from __future__ import annotations

from typing import Any

from migrate.manifests.components import Options
from migrate.manifests.model import HelmRelease

PROMETHEUS_REPO = "https://prometheus-community.github.io/helm-charts"
JAEGER_REPO = "https://jaegertracing.github.io/helm-charts"
ELASTIC_REPO = "https://helm.elastic.co"
FLUENT_REPO = "https://fluent.github.io/helm-charts"
ISTIO_REPO = "https://istio-release.storage.googleapis.com/charts"
INGRESS_NGINX_REPO = "https://kubernetes.github.io/ingress-nginx"
STRIMZI_REPO = "https://strimzi.io/charts/"

#: chart -> pinned version
CHART_VERSIONS: dict[str, str] = {
    "kube-prometheus-stack": "65.1.1",
    "jaeger": "3.3.1",
    "eck-operator": "2.14.0",
    "fluent-bit": "0.47.10",
    "base": "1.23.2",
    "cni": "1.23.2",
    "istiod": "1.23.2",
    "ingress-nginx": "4.11.3",
    "strimzi-kafka-operator": "0.43.0",
}


def _release(
    name: str, chart: str, repository: str, namespace: str, component: str, values: dict[str, Any]
) -> HelmRelease:
    return HelmRelease(
        name=name,
        chart=chart,
        version=CHART_VERSIONS[chart],
        repository=repository,
        namespace=namespace,
        component=component,
        values=values,
    )


def releases_for(component: str, options: Options, variables: dict[str, Any]) -> list[HelmRelease]:
    """The Helm releases one component brings (none for most)."""
    monitoring = variables["target"]["monitoring"]["namespace"]
    namespace = variables["target"]["namespace"]
    if component == "prometheus":
        return [
            _release(
                "kube-prometheus-stack",
                "kube-prometheus-stack",
                PROMETHEUS_REPO,
                monitoring,
                component,
                {
                    "fullnameOverride": "kube-prometheus-stack",
                    "grafana": {"enabled": options.has("grafana")},
                    "prometheus": {
                        "prometheusSpec": {
                            # pick up the ServiceMonitors migrate renders in the app namespace
                            "serviceMonitorSelectorNilUsesHelmValues": False,
                            "podMonitorSelectorNilUsesHelmValues": False,
                            "retention": "15d",
                        }
                    },
                },
            )
        ]
    if component == "jaeger":
        return [
            _release(
                "jaeger",
                "jaeger",
                JAEGER_REPO,
                monitoring,
                component,
                {
                    "provisionDataStore": {"cassandra": False},
                    "allInOne": {"enabled": True},
                    "storage": {"type": "memory"},
                    "agent": {"enabled": False},
                    "collector": {"enabled": False},
                    "query": {"enabled": False},
                },
            )
        ]
    if component == "logging":
        return [
            _release("eck-operator", "eck-operator", ELASTIC_REPO, "elastic-system", component, {}),
            _release(
                "fluent-bit",
                "fluent-bit",
                FLUENT_REPO,
                monitoring,
                component,
                {
                    "env": [
                        {
                            "name": "ES_PASSWORD",
                            "valueFrom": {
                                "secretKeyRef": {"name": "logs-es-elastic-user", "key": "elastic"}
                            },
                        }
                    ],
                    "config": {
                        "outputs": (
                            "[OUTPUT]\n    Name es\n    Match kube.*\n"
                            f"    Host logs-es-http.{monitoring}.svc\n    Port 9200\n"
                            "    HTTP_User elastic\n    HTTP_Passwd ${ES_PASSWORD}\n"
                            "    tls On\n    tls.verify Off\n    Suppress_Type_Name On\n"
                            "    Logstash_Format On\n"
                        )
                    },
                },
            ),
        ]
    if component == "istio":
        return [
            _release("istio-base", "base", ISTIO_REPO, "istio-system", component, {}),
            # the CNI plugin sets up traffic capture, so sidecars need no NET_ADMIN and
            # plugin pods pass the namespace's `restricted` Pod Security level
            _release("istio-cni", "cni", ISTIO_REPO, "kube-system", component, {}),
            _release(
                "istiod",
                "istiod",
                ISTIO_REPO,
                "istio-system",
                component,
                {"pilot": {"cni": {"enabled": True}}, "meshConfig": {"enableTracing": True}},
            ),
        ]
    if component == "ingress-nginx":
        return [
            _release(
                "ingress-nginx",
                "ingress-nginx",
                INGRESS_NGINX_REPO,
                "ingress-nginx",
                component,
                {
                    "controller": {
                        "ingressClassResource": {
                            "name": variables["target"]["ingress"]["class_name"]
                        },
                        # the controller joins the mesh so it can reach STRICT-mTLS plugins
                        "podLabels": {"sidecar.istio.io/inject": str(options.has("istio")).lower()},
                        "podAnnotations": {"traffic.sidecar.istio.io/includeInboundPorts": ""},
                        "metrics": {"enabled": True},
                    }
                },
            )
        ]
    if component == "kafka":
        return [
            _release(
                "strimzi",
                "strimzi-kafka-operator",
                STRIMZI_REPO,
                "strimzi",
                component,
                {"watchNamespaces": [namespace]},
            )
        ]
    return []
