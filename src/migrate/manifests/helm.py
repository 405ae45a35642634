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
CERT_MANAGER_REPO = "https://charts.jetstack.io"

#: chart -> pinned version: the newest release (August 2026) that supports Kubernetes 1.30,
#: the default target.kubernetes_version. KUBERNETES_SUPPORT says which Kubernetes versions
#: each one supports; a newer release that dropped 1.30 is named in the comment.
CHART_VERSIONS: dict[str, str] = {
    # installs prometheus-operator 0.93.1 (PROMETHEUS_OPERATOR_VERSION) and its CRDs
    "kube-prometheus-stack": "88.5.3",
    # the last chart of Jaeger v1 (1.53); 4.x deploys Jaeger v2, whose values and
    # Services differ (no allInOne, one Service named after the release)
    "jaeger": "3.4.1",
    # ECK 3.2: Kubernetes 1.30 - 1.34 (3.3 starts at 1.31, 3.5.0 at 1.32)
    "eck-operator": "3.2.0",
    "fluent-bit": "0.58.1",
    # Istio 1.29: Kubernetes 1.30 - 1.35 (istioctl precheck's minimum is 1.30; 1.30.x
    # starts at 1.32). base installs the CRDs, at the same tag.
    "base": "1.29.6",
    "cni": "1.29.6",
    "istiod": "1.29.6",
    # controller 1.14.5: Kubernetes 1.30 - 1.34 (4.15 starts at 1.31). ingress-nginx is
    # retired upstream (March 2026): ingress.controller "gateway" is the maintained path.
    "ingress-nginx": "4.14.5",
    # Strimzi 0.51+ supports Kubernetes 1.30 and newer; 1.0 removed the v1beta2 API:
    # Kafka, KafkaNodePool and KafkaTopic are kafka.strimzi.io/v1
    "strimzi-kafka-operator": "1.2.0",
    # the newest KEDA tested with Kubernetes 1.30, the default target.kubernetes_version
    # (KEDA 2.17: 1.30 - 1.32; 2.18 starts at 1.31). The chart's appVersion is the same.
    "keda": "2.17.3",
    # cert-manager 1.18: Kubernetes 1.29 - 1.33 (1.19 starts at 1.31, 1.21 at 1.33)
    "cert-manager": "1.18.6",
}

#: chart -> (oldest, newest) Kubernetes minor version its pinned release supports, from
#: each project's support matrix (None: no bound stated)
KUBERNETES_SUPPORT: dict[str, tuple[str | None, str | None]] = {
    "kube-prometheus-stack": ("1.25", None),  # Chart.yaml kubeVersion
    "jaeger": ("1.21", None),  # Chart.yaml kubeVersion
    "eck-operator": ("1.30", "1.34"),
    "fluent-bit": (None, None),  # a DaemonSet of core objects; no kubeVersion
    "base": ("1.30", "1.35"),
    "cni": ("1.30", "1.35"),
    "istiod": ("1.30", "1.35"),
    "ingress-nginx": ("1.30", "1.34"),
    "strimzi-kafka-operator": ("1.30", None),
    "keda": ("1.30", "1.32"),
    "cert-manager": ("1.29", "1.33"),
}

#: the prometheus-operator that the pinned kube-prometheus-stack installs (its appVersion)
PROMETHEUS_OPERATOR_VERSION = "0.93.1"
#: the Gateway API CRDs (standard channel) of Gateway and HTTPRoute: the release the pinned
#: Istio is built against (istio's go.mod at 1.29.6); installed with the cluster, not by a chart
GATEWAY_API_VERSION = "1.4.1"

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

#: The Jaeger chart (3.4.1) with `allInOne.enabled` runs one all-in-one pod whose
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


#: the all-in-one pod's OTLP over gRPC port on the same collector Service (`otlp-grpc`)
JAEGER_OTLP_GRPC_PORT = 4317


def jaeger_otlp_grpc_host(monitoring_namespace: str) -> str:
    """The collector's fully qualified name, for Istio's OpenTelemetry tracing provider."""
    return f"{jaeger_collector_service()}.{monitoring_namespace}.svc.cluster.local"


def _istiod_values(monitoring: str) -> dict[str, Any]:
    """istiod: traffic capture by the CNI plugin, an OpenTelemetry tracer, sized sidecars.

    `meshConfig.enableTracing` alone names no tracer and does nothing. Istio sends spans
    to an `extensionProviders` entry that a `Telemetry` resource enables
    (k8s/istio.yaml.j2); this one is the Jaeger collector phase 1 renders, OTLP over
    gRPC (istio.io/latest/docs/tasks/observability/distributed-tracing/opentelemetry/).
    `global.proxy.resources` replaces Istio's default sidecar limit of 2 CPU / 1 GiB
    (manifests/charts/istio-control/istio-discovery/values.yaml) with what the quota
    counts (manifests/sizing.py); the plugin pods also say so in annotations.
    """
    from migrate.manifests.sizing import SIDECAR

    return {
        "pilot": {"cni": {"enabled": True}},
        "meshConfig": {
            # Prometheus (no sidecar) scrapes the merged app + Envoy metrics on the
            # agent's port 15020, outside mutual TLS (Istio's default, said explicitly)
            "enablePrometheusMerge": True,
            "extensionProviders": [
                {
                    "name": ISTIO_TRACING_PROVIDER,
                    "opentelemetry": {
                        "service": jaeger_otlp_grpc_host(monitoring),
                        "port": JAEGER_OTLP_GRPC_PORT,
                    },
                }
            ],
        },
        "global": {"proxy": {"resources": SIDECAR.to_k8s()}},
    }


#: the name of that provider, which the Telemetry resource refers to
ISTIO_TRACING_PROVIDER = "otel"


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
                _istiod_values(monitoring),
            ),
        ]
    if component == "ingress-nginx":
        if variables["target"]["ingress"].get("controller") == "gateway":
            return []  # the Gateway API controller is the cluster's (docs/manifests.md)
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
                {
                    "watchNamespaces": [namespace],
                    # the namespace enforces Pod Security `restricted`; Strimzi's default
                    # (baseline) provider sets no container securityContext, its
                    # `restricted` one does (api/.../RestrictedPodSecurityProvider.java;
                    # documentation/modules/configuring/con-config-security-providers.adoc).
                    # The chart passes `extraEnvs` to the operator (values.yaml at 1.2.0)
                    "extraEnvs": [
                        {"name": "STRIMZI_POD_SECURITY_PROVIDER_CLASS", "value": "restricted"}
                    ],
                },
            )
        ]
    return []
