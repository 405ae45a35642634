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
KEDA_REPO = "https://kedacore.github.io/charts"

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
    # the newest KEDA tested with Kubernetes 1.30, the default target.kubernetes_version
    # (KEDA 2.17: 1.30 - 1.32; 2.18 starts at 1.31). The chart's appVersion is the same.
    "keda": "2.17.3",
}

#: where fluent-bit finds the CA of ECK's Elasticsearch (tls.verify On)
ES_CA_DIR = "/fluent-bit/es-ca"

#: seconds Helm waits for a release's pods (`--timeout`); Helm's own default is 300
DEFAULT_RELEASE_TIMEOUT_S = 600
RELEASE_TIMEOUTS_S: dict[str, int] = {
    # many CRDs, an operator, Prometheus, Alertmanager and Grafana
    "kube-prometheus-stack": 900,
    # waits for the Secret ECK makes from the Elasticsearch resource, once that is green
    "fluent-bit": 900,
}


def install_options(release: str) -> dict[str, Any]:
    """How every release is installed: under its own name (never Pulumi's `<name>-<hex>`:
    Services such as jaeger-collector.monitoring.svc keep the names the workloads use),
    with an explicit timeout, atomically (a failed install is purged, a failed upgrade
    rolled back) and cleaning up what a failed upgrade created."""
    return {
        "name": release,
        "timeout": RELEASE_TIMEOUTS_S.get(release, DEFAULT_RELEASE_TIMEOUT_S),
        "atomic": True,
        "cleanup_on_fail": True,
    }


#: the KEDA release the pinned chart installs: its CRDs are vendored under
#: manifests/crds/keda/ at this tag (scripts/refresh-crds) and validate the ScaledObjects
KEDA_APP_VERSION = "2.17.3"
KEDA_NAMESPACE = "keda"

#: The Jaeger chart (3.3.1) with `allInOne.enabled` runs one all-in-one pod whose
#: Deployment sets COLLECTOR_OTLP_ENABLED=true, and a Service `<fullname>-collector`
#: with port 4318 (`otlp-http`, OTLP over HTTP) and 4317 (`otlp-grpc`); fullname is the
#: release name when it contains the chart name (templates/_helpers.tpl, jaeger.fullname).
JAEGER_RELEASE = "jaeger"
JAEGER_OTLP_HTTP_PORT = 4318


def jaeger_collector_service(release: str = JAEGER_RELEASE) -> str:
    """The collector Service the Jaeger chart creates for a release (no overrides)."""
    fullname = release if "jaeger" in release else f"{release}-jaeger"
    return f"{fullname[:63].rstrip('-')}-collector"


def jaeger_otlp_endpoint(monitoring_namespace: str) -> str:
    """Where the workloads send traces: the rendered Jaeger collector, OTLP over HTTP."""
    service = jaeger_collector_service()
    return f"http://{service}.{monitoring_namespace}.svc:{JAEGER_OTLP_HTTP_PORT}"


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
                JAEGER_RELEASE,
                "jaeger",
                JAEGER_REPO,
                monitoring,
                component,
                {
                    "provisionDataStore": {"cassandra": False},
                    # the all-in-one pod receives OTLP (gRPC 4317, HTTP 4318) behind
                    # Service jaeger-collector; the separate collector is not needed
                    "allInOne": {
                        "enabled": True,
                        "service": {
                            "collector": {
                                "otlp": {
                                    "grpc": {"name": "otlp-grpc"},
                                    "http": {"name": "otlp-http"},
                                }
                            }
                        },
                    },
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
                    # the CA that ECK signs the Elasticsearch HTTP certificate with (the
                    # Secret <name>-es-http-certs-public): the connection is verified
                    "extraVolumes": [
                        {
                            "name": "es-ca",
                            "secret": {
                                "secretName": "logs-es-http-certs-public",
                                "items": [{"key": "ca.crt", "path": "ca.crt"}],
                            },
                        }
                    ],
                    "extraVolumeMounts": [
                        {"name": "es-ca", "mountPath": ES_CA_DIR, "readOnly": True}
                    ],
                    "config": {
                        "outputs": (
                            "[OUTPUT]\n    Name es\n    Match kube.*\n"
                            f"    Host logs-es-http.{monitoring}.svc\n    Port 9200\n"
                            "    HTTP_User elastic\n    HTTP_Passwd ${ES_PASSWORD}\n"
                            "    tls On\n    tls.verify On\n"
                            f"    tls.ca_file {ES_CA_DIR}/ca.crt\n"
                            f"    tls.vhost logs-es-http.{monitoring}.svc\n"
                            "    Suppress_Type_Name On\n    Logstash_Format On\n"
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
    if component == "hpa" and options.has("workers"):
        # KEDA scales the workers on consumer lag (the ScaledObjects of k8s/keda.yaml.j2)
        return [
            _release(
                "keda",
                "keda",
                KEDA_REPO,
                KEDA_NAMESPACE,
                component,
                {
                    "watchNamespace": namespace,
                    # with the mesh, the operator reads the queue's lag through a sidecar
                    # (the application namespace only accepts mutual TLS)
                    "podLabels": {
                        "keda": {"sidecar.istio.io/inject": str(options.has("istio")).lower()}
                    },
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
