"""The mesh against its callers: mTLS modes, operator pods, tracing, ingress, retries, auth.

A sidecar under a STRICT PeerAuthentication accepts only mutual TLS, which a caller
without a sidecar (Prometheus, the operators, an ingress controller outside the mesh)
cannot speak. The callers are known from what the set renders: ServiceMonitors and
PodMonitors (Prometheus), Kafka and Elasticsearch resources (their operators), Ingresses
(the controller), ScaledObjects (KEDA), fluent-bit's outputs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from migrate.manifests.lint import Finding, SetModel, rule
from migrate.manifests.lint.charts import chart_pod
from migrate.manifests.lint.operated import pods_in, resolve_host, service_targets
from migrate.manifests.lint.pods import Pod, dig, is_injected, matches

if TYPE_CHECKING:
    from migrate.manifests.model import Manifest

ISTIO_PA = "https://istio.io/latest/docs/reference/config/security/peer_authentication/"
ISTIO_PROMETHEUS = "https://istio.io/latest/docs/ops/integrations/prometheus/#tls-settings"
STRIMZI_NO_SIDECARS = (
    "https://github.com/strimzi/strimzi-kafka-operator/issues/4604 (maintainer: 'We do not "
    "support / expect any injected Istio or other sidecars'), issues/5519"
)
ECK_MESH = "cloud-on-k8s docs/advanced-topics/service-meshes.asciidoc (Istio, Elasticsearch)"
ISTIO_TRACING = (
    "https://istio.io/latest/docs/tasks/observability/distributed-tracing/opentelemetry/"
)
UPSTREAM_VHOST = (
    "https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/annotations/"
    "#custom-nginx-upstream-vhost; https://deckhouse.io/documentation/v1.72/user/network/"
    "app_istio_activation.html"
)
RETRIES = (
    "https://istio.io/latest/docs/reference/config/networking/virtual-service/#HTTPRetry; "
    "Envoy x-envoy-retry-on: 5xx retries any request, idempotent or not"
)
ISTIO_JWT = "https://istio.io/latest/docs/tasks/security/authorization/authz-jwt/"
INGRESS_TLS = "https://kubernetes.io/docs/concepts/services-networking/ingress/#tls"
ROOT_NAMESPACE = "istio-system"
NON_IDEMPOTENT = {"POST", "PATCH"}
AUTH_ANNOTATIONS = ("auth-url", "auth-type", "auth-tls-verify-client", "auth-signin")


def _mode(pa: Manifest, port: int | None) -> str | None:
    spec = pa.obj.get("spec") or {}
    if port is not None and spec.get("selector"):
        levels = spec.get("portLevelMtls") or {}
        level = dig(levels.get(str(port), levels.get(port)), "mode")
        if level and level != "UNSET":
            return str(level)
    mode = dig(spec, "mtls", "mode")
    return str(mode) if mode and mode != "UNSET" else None


def mtls_mode(model: SetModel, pod: Pod, port: int) -> tuple[str, Manifest | None]:
    """The mode a pod's sidecar applies on a port, and the PeerAuthentication that sets it:
    workload (selector) over namespace over mesh (root namespace); PERMISSIVE by default.
    A portLevelMtls applies only with a selector (Istio's PeerAuthentication reference)."""
    found: tuple[str, Manifest | None] = ("PERMISSIVE", None)
    policies = model.of_kind("PeerAuthentication")
    for namespace in (ROOT_NAMESPACE, pod.namespace):
        for pa in policies:
            if pa.namespace == namespace and not dig(pa.obj, "spec", "selector"):
                mode = _mode(pa, None)
                found = (mode, pa) if mode else found
    for pa in policies:
        selector = dig(pa.obj, "spec", "selector")
        if pa.namespace == pod.namespace and selector and matches(selector, pod.labels):
            mode = _mode(pa, port)
            found = (mode, pa) if mode else found
    return found


def _intercepted(pod: Pod, port: int) -> bool:
    exclude = pod.annotations.get("traffic.sidecar.istio.io/excludeInboundPorts", "")
    include = pod.annotations.get("traffic.sidecar.istio.io/includeInboundPorts", "*")
    if str(port) in [p.strip() for p in exclude.split(",")]:
        return False
    return include.strip() == "*" or str(port) in [p.strip() for p in include.split(",")]


def _monitor_targets(model: SetModel) -> Iterator[tuple[Manifest, Pod, int]]:
    for monitor in model.of_kind("ServiceMonitor", "PodMonitor"):
        spec = monitor.obj.get("spec") or {}
        names = dig(spec, "namespaceSelector", "matchNames") or [monitor.namespace]
        for ns in names:
            if monitor.kind == "PodMonitor":
                for endpoint in spec.get("podMetricsEndpoints") or []:
                    for pod in pods_in(model, ns, spec.get("selector")):
                        number = pod.port_numbers().get(endpoint.get("port"))
                        if number is not None:
                            yield monitor, pod, number
                continue
            for service in model.of_kind("Service"):
                labels = dig(service.obj, "metadata", "labels") or {}
                if service.namespace != ns or not matches(spec.get("selector"), labels):
                    continue
                for endpoint in spec.get("endpoints") or []:
                    for pod, number in service_targets(model, service, endpoint.get("port")):
                        yield monitor, pod, number


def _calls(model: SetModel) -> Iterator[tuple[Pod, Manifest, Pod, int, str]]:
    """(caller, the object that makes it call, target pod, port, why)."""
    prometheus = chart_pod(model, "kube-prometheus-stack")
    if prometheus:
        for monitor, pod, port in _monitor_targets(model):
            yield prometheus, monitor, pod, port, "Prometheus scrapes it"
    strimzi = chart_pod(model, "strimzi-kafka-operator")
    eck = chart_pod(model, "eck-operator")
    for kafka in model.of_kind("Kafka"):
        for pod in pods_in(model, kafka.namespace or "default", None):
            if strimzi and pod.labels.get("strimzi.io/name") == f"{kafka.name}-kafka":
                for port in (9091, 8443):
                    yield strimzi, kafka, pod, port, "the Strimzi operator manages the brokers"
    for es in model.of_kind("Elasticsearch"):
        for pod in pods_in(model, es.namespace or "default", None):
            if eck and pod.labels.get("elasticsearch.k8s.elastic.co/cluster-name") == es.name:
                yield eck, es, pod, 9200, "the ECK operator calls the Elasticsearch API"
    controller = chart_pod(model, "ingress-nginx")
    for ingress in model.of_kind("Ingress"):
        for backend in _ingress_backends(ingress):
            service = model.find("Service", ingress.namespace, backend[0])
            for pod, port in service_targets(model, service, backend[1]) if service else []:
                if controller:
                    yield controller, ingress, pod, port, "the ingress controller proxies to it"
    keda = chart_pod(model, "keda")
    for scaled in model.of_kind("ScaledObject"):
        for trigger in dig(scaled.obj, "spec", "triggers") or []:
            servers = str(dig(trigger, "metadata", "bootstrapServers") or "")
            for server in filter(None, servers.split(",")):
                host, _, number_text = server.strip().rpartition(":")
                for pod, number in resolve_host(
                    model, host, int(number_text or 9092), scaled.namespace or ""
                ):
                    if keda:
                        yield keda, scaled, pod, number, "KEDA reads the consumer lag"


def _ingress_backends(ingress: Manifest) -> Iterator[tuple[str, Any]]:
    spec = ingress.obj.get("spec") or {}
    default = dig(spec, "defaultBackend", "service")
    paths = [p for r in spec.get("rules") or [] for p in dig(r, "http", "paths") or []]
    for service in [default] + [dig(p, "backend", "service") for p in paths]:
        if service:
            port = service.get("port") or {}
            yield str(service.get("name")), port.get("name", port.get("number"))


@rule("mtls-callers-without-sidecar", "STRICT mTLS does not refuse a caller that has no sidecar")
def strict_mtls(model: SetModel) -> Iterable[Finding]:
    refused: dict[tuple[str, str], dict[str, Any]] = {}
    for caller, why_obj, pod, port, why in _calls(model):
        if is_injected(model, caller) or not is_injected(model, pod) or not _intercepted(pod, port):
            continue
        mode, pa = mtls_mode(model, pod, port)
        if mode != "STRICT" or pa is None:
            continue
        entry = refused.setdefault(
            (pa.ref, caller.owner),
            {"pa": pa, "caller": caller, "why": why, "targets": [], "ports": set()},
        )
        target = f"{pod.owner} port {port} ({why_obj.ref})"
        if target not in entry["targets"]:
            entry["targets"].append(target)
            entry["ports"].add(port)
    for entry in refused.values():
        pa, caller = entry["pa"], entry["caller"]
        ignored = (
            " (its portLevelMtls is ignored: it applies only with a selector)"
            if dig(pa.obj, "spec", "portLevelMtls") and not dig(pa.obj, "spec", "selector")
            else ""
        )
        ports = ", ".join(f"{p}: {{mode: PERMISSIVE}}" for p in sorted(entry["ports"]))
        yield Finding(
            rule="mtls-callers-without-sidecar",
            severity="error",
            object=pa.ref,
            file=model.where(pa),
            message=f"mTLS STRICT{ignored} refuses {caller.owner} (namespace "
            f"{caller.namespace}, no sidecar) where {entry['why']}: " + "; ".join(entry["targets"]),
            fix=f"add a PeerAuthentication with a selector for those pods and portLevelMtls "
            f"{{{ports}}}, turn injection off for operator-managed pods, or put the caller "
            "in the mesh",
            source=ISTIO_PA + ("; " + ISTIO_PROMETHEUS if "Prometheus" in entry["why"] else ""),
        )


@rule("mesh-operator-pods", "operator-managed pods get no sidecar they do not support")
def operator_pods(model: SetModel) -> Iterable[Finding]:
    from migrate.manifests.lint.eck import eck_pods
    from migrate.manifests.lint.strimzi import strimzi_pods

    for pod in strimzi_pods(model) + eck_pods(model):
        if not is_injected(model, pod):
            continue
        es = pod.labels.get("common.k8s.elastic.co/type") == "elasticsearch"
        if pod.operator == "eck":
            # Kibana works in the mesh (ECK's docs); Elasticsearch when 9300 bypasses it
            out = pod.annotations.get("traffic.sidecar.istio.io/excludeOutboundPorts", "")
            if not es or (not _intercepted(pod, 9300) and "9300" in out.split(",")):
                continue
        yield Finding(
            rule="mesh-operator-pods",
            severity="error",
            object=pod.owner,
            file=pod.file,
            message=f"namespace {pod.namespace} injects Istio sidecars and these pods do not "
            "opt out: "
            + (
                "Strimzi does not support sidecars in the pods it makes"
                if pod.operator == "strimzi"
                else "Elasticsearch's transport port 9300 is TLS already; proxied by the "
                "sidecar it is encrypted twice and the nodes cannot talk"
            ),
            fix='set the label sidecar.istio.io/inject: "false" in the pod template '
            + (
                "(Kafka spec.kafka.template.pod.metadata.labels, the KafkaNodePool's "
                "spec.template.pod and spec.entityOperator.template.pod)"
                if pod.operator == "strimzi"
                else "(podTemplate.metadata), or exclude 9300 with the annotations "
                "traffic.sidecar.istio.io/excludeInboundPorts and excludeOutboundPorts"
            ),
            source=STRIMZI_NO_SIDECARS if pod.operator == "strimzi" else ECK_MESH,
        )


TRACERS = ("opentelemetry", "zipkin", "datadog", "lightstep", "skywalking", "stackdriver")


@rule("mesh-tracing-wired", "mesh tracing has a provider to send spans to")
def tracing(model: SetModel) -> Iterable[Finding]:
    istiod = model.release("istiod")
    mesh = (dig(istiod.values, "meshConfig") or {}) if istiod else {}
    tracers = [p.get("name") for p in mesh.get("extensionProviders") or [] if set(p) & set(TRACERS)]
    if istiod is None or not (mesh.get("enableTracing") or tracers):
        return
    enabled = list(dig(mesh, "defaultProviders", "tracing") or [])
    for telemetry in model.of_kind("Telemetry"):
        for item in dig(telemetry.obj, "spec", "tracing") or []:
            enabled += [p.get("name") for p in item.get("providers") or []]
    if dig(mesh, "defaultConfig", "tracing", "zipkin", "address") or set(tracers) & set(enabled):
        return
    yield Finding(
        rule="mesh-tracing-wired",
        severity="warning",
        object=f"HelmRelease {istiod.name}",
        file=model.release_where(istiod),
        message=(
            f"the tracing providers {tracers} are defined, but no Telemetry resource or "
            "meshConfig.defaultProviders.tracing enables them"
            if tracers
            else "meshConfig.enableTracing is on, but no extensionProviders entry names a tracer"
        )
        + ": mesh tracing goes nowhere",
        fix="add an opentelemetry extensionProviders entry pointing at the Jaeger collector "
        "(port 4317) and a Telemetry resource in the root namespace enabling it",
        source=ISTIO_TRACING,
    )


@rule("ingress-upstream-vhost", "an ingress into the mesh keeps the Host its sidecar routes by")
def upstream_vhost(model: SetModel) -> Iterable[Finding]:
    controller = chart_pod(model, "ingress-nginx")
    for ingress in model.of_kind("Ingress"):
        notes = dig(ingress.obj, "metadata", "annotations") or {}
        upstream = str(notes.get("nginx.ingress.kubernetes.io/service-upstream")).lower()
        if upstream != "true" or "nginx.ingress.kubernetes.io/upstream-vhost" in notes:
            continue
        if controller is not None and not is_injected(model, controller):
            continue
        yield Finding(
            rule="ingress-upstream-vhost",
            severity="error",
            object=ingress.ref,
            file=model.where(ingress),
            message="service-upstream is on but upstream-vhost is not: the controller's "
            "sidecar sees the client's Host, which matches no VirtualService host, so the "
            "VirtualService's routes, retries and timeouts never apply",
            fix="annotate nginx.ingress.kubernetes.io/upstream-vhost: "
            f"<service>.{ingress.namespace}.svc.cluster.local (one Ingress per Service)",
            source=UPSTREAM_VHOST,
        )


def _any_method(match: dict[str, Any]) -> bool:
    method = match.get("method")
    if not method:
        return True
    text = str(method.get("exact") or method.get("prefix") or method.get("regex") or "")
    return any(re.fullmatch(text, m) or m.startswith(text) for m in NON_IDEMPOTENT if text)


@rule("retries-idempotent-only", "a route retried on 5xx serves idempotent methods only")
def retries(model: SetModel) -> Iterable[Finding]:
    for vs in model.of_kind("VirtualService"):
        for route in dig(vs.obj, "spec", "http") or []:
            policy = route.get("retries") or {}
            retry_on = {s.strip() for s in str(policy.get("retryOn", "")).split(",")}
            if not policy or policy.get("attempts") == 0:
                continue
            if not retry_on & {"5xx", "gateway-error"}:
                continue
            matched = route.get("match") or [{}]
            if any(_any_method(m) for m in matched):
                yield Finding(
                    rule="retries-idempotent-only",
                    severity="error",
                    object=vs.ref,
                    file=model.where(vs),
                    message=f"route {route.get('name') or '(unnamed)'} retries on "
                    f"{policy.get('retryOn')} ({policy.get('attempts')} attempts) and matches "
                    "POST: a request that failed after the handler ran (e.g. POST /invoke) runs "
                    "again",
                    fix="retry only on connect-failure,refused-stream,reset (before the request "
                    "reached the handler), or match the retried route to GET/HEAD",
                    source=RETRIES,
                )


def _authenticated(model: SetModel, pod: Pod) -> bool:
    if not is_injected(model, pod):
        return False
    for policy in model.of_kind("AuthorizationPolicy"):
        spec = policy.obj.get("spec") or {}
        if policy.namespace not in (pod.namespace, ROOT_NAMESPACE):
            continue
        if spec.get("selector") and not matches(spec["selector"], pod.labels):
            continue
        sources = [
            f.get("source") or {} for r in spec.get("rules") or [] for f in r.get("from") or []
        ]
        action = spec.get("action", "ALLOW")
        if action == "CUSTOM":
            return True
        if action == "ALLOW" and sources and all(s.get("requestPrincipals") for s in sources):
            return True
        if action == "DENY" and any(s.get("notRequestPrincipals") for s in sources):
            return True
    return False


def _exposures(model: SetModel) -> Iterator[tuple[Manifest, Pod]]:
    for ingress in model.of_kind("Ingress"):
        notes = dig(ingress.obj, "metadata", "annotations") or {}
        if any(f"nginx.ingress.kubernetes.io/{a}" in notes for a in AUTH_ANNOTATIONS):
            continue
        for name, port in _ingress_backends(ingress):
            service = model.find("Service", ingress.namespace, name)
            for pod, _ in service_targets(model, service, port) if service else []:
                yield ingress, pod
    for route in model.of_kind("HTTPRoute"):
        for item in dig(route.obj, "spec", "rules") or []:
            for ref in item.get("backendRefs") or []:
                service = model.find(
                    "Service", ref.get("namespace", route.namespace), ref.get("name")
                )
                for pod, _ in service_targets(model, service, ref.get("port")) if service else []:
                    yield route, pod
    for vs in model.of_kind("VirtualService"):
        if not set(dig(vs.obj, "spec", "gateways") or ["mesh"]) - {"mesh"}:
            continue
        for item in dig(vs.obj, "spec", "http") or []:
            for dest in item.get("route") or []:
                host = str(dig(dest, "destination", "host") or "")
                port = dig(dest, "destination", "port", "number") or 80
                for pod, _ in resolve_host(model, host, port, vs.namespace or ""):
                    yield vs, pod


@rule("exposed-with-auth", "what an Ingress or Gateway exposes requires authentication")
def exposed(model: SetModel) -> Iterable[Finding]:
    paths = {"service": "POST /invoke", "orchestrator": "POST /runs"}
    open_: dict[str, tuple[Manifest, list[str]]] = {}
    for front, pod in _exposures(model):
        role = pod.env().get("MIGRATE_ROLE")
        if role not in paths or _authenticated(model, pod):
            continue
        what = f"{paths[str(role)]} of {pod.owner}"
        found = open_.setdefault(front.ref, (front, []))[1]
        if what not in found:
            found.append(what)
    for front, found in open_.values():
        yield Finding(
            rule="exposed-with-auth",
            severity="error",
            object=front.ref,
            file=model.where(front),
            message=f"exposes {'; '.join(found)} with no authentication: no "
            "ingress auth annotation, and no AuthorizationPolicy requiring a request principal "
            "(RequestAuthentication) selects the pods",
            fix="add a RequestAuthentication (the issuer's JWKS) and an AuthorizationPolicy "
            "with from.source.requestPrincipals selecting the pods, or nginx auth-url",
            source=ISTIO_JWT,
        )


@rule("ingress-tls-host", "an Ingress names its host and terminates TLS")
def ingress_tls(model: SetModel) -> Iterable[Finding]:
    for ingress in model.of_kind("Ingress"):
        spec = ingress.obj.get("spec") or {}
        missing = []
        if not spec.get("tls"):
            missing.append("no tls section (traffic and any token travel in clear text)")
        if any(not r.get("host") for r in spec.get("rules") or []):
            missing.append("a rule with no host (it answers for every name)")
        if missing:
            yield Finding(
                rule="ingress-tls-host",
                severity="warning",
                object=ingress.ref,
                file=model.where(ingress),
                message="; ".join(missing),
                fix="set the host from config and a tls entry with its secret (cert-manager's "
                "cert-manager.io/cluster-issuer annotation makes one)",
                source=INGRESS_TLS,
            )
