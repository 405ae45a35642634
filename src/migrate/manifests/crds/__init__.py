"""Upstream CustomResourceDefinitions, vendored at the versions of the pinned charts.

Each directory here holds the CRDs of one upstream project, only for the kinds
migrate renders, with the project's licence and a README saying where they
came from (repository, tag, commit, paths). `UPSTREAMS` says what to fetch;
scripts/refresh-crds fetches it; manifests/validate.py checks the rendered
custom resources against these schemas, offline.

The YAML files are the vendored source of truth. Next to each `<name>.yaml`,
scripts/refresh-crds writes `<name>.json` (`json_form`): the same document as JSON,
with the sha256 of the YAML bytes it was read from, because libyaml takes 0.2 s to
read them all and JSON 0.01 s. validate.py reads the JSON only when that sha256 is
the YAML's (a YAML edited without a refresh is read as YAML); a test checks that
every JSON file says exactly what its YAML says.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from migrate.manifests.helm import (
    CHART_VERSIONS,
    GATEWAY_API_VERSION,
    KEDA_APP_VERSION,
    PROMETHEUS_OPERATOR_VERSION,
)


@dataclass(frozen=True)
class Upstream:
    """Where one project's CRDs come from."""

    name: str  # as messages say it: "Strimzi 1.2.0 CRD"
    directory: str  # under manifests/crds/
    repository: str  # owner/name on GitHub
    tag: str  # the git tag the files are read at
    version: str  # the version of the software (what crd_source() names)
    installed_by: str  # what installs these CRDs in the cluster, for the README
    copyright: str  # holder and licence, for the README
    license: str  # upstream path of the licence, vendored as LICENSE
    #: vendored file name -> (upstream path, CRD name to pick out of a multi-document file)
    files: dict[str, tuple[str, str | None]] = field(default_factory=dict)


def _picked(path: str, *names: str) -> dict[str, tuple[str, str | None]]:
    return {f"{name}.yaml": (path, name) for name in names}


_STRIMZI = CHART_VERSIONS["strimzi-kafka-operator"]
_STRIMZI_CRDS = "packaging/helm-charts/helm3/strimzi-kafka-operator/crds"
_ISTIO = CHART_VERSIONS["base"]
_ECK = CHART_VERSIONS["eck-operator"]
_PROMETHEUS_STACK = CHART_VERSIONS["kube-prometheus-stack"]
_PROMETHEUS_CRDS = "charts/kube-prometheus-stack/charts/crds/crds"
_CERT_MANAGER = CHART_VERSIONS["cert-manager"]

#: the `source` of manifests.validate.VENDORED_CRDS -> where its files come from
UPSTREAMS: dict[str, Upstream] = {
    "KEDA": Upstream(
        name="KEDA",
        directory="keda",
        repository="kedacore/keda",
        tag=f"v{KEDA_APP_VERSION}",
        version=KEDA_APP_VERSION,
        installed_by="the appVersion of the pinned kedacore/keda Helm chart "
        f"{CHART_VERSIONS['keda']}",
        copyright="Copyright The KEDA Authors, licensed under the Apache License 2.0",
        license="LICENSE",
        files={"keda.sh_scaledobjects.yaml": ("config/crd/bases/keda.sh_scaledobjects.yaml", None)},
    ),
    "Strimzi": Upstream(
        name="Strimzi",
        directory="strimzi",
        repository="strimzi/strimzi-kafka-operator",
        tag=_STRIMZI,
        version=_STRIMZI,
        installed_by=f"the CRDs the pinned strimzi-kafka-operator Helm chart {_STRIMZI} "
        "installs (its crds/ directory)",
        copyright="Copyright Strimzi authors, licensed under the Apache License 2.0",
        license="LICENSE",
        files={
            name: (f"{_STRIMZI_CRDS}/{name}", None)
            for name in (
                "040-Crd-kafka.yaml",
                "043-Crd-kafkatopic.yaml",
                "045-Crd-kafkanodepool.yaml",
            )
        },
    ),
    "Istio": Upstream(
        name="Istio",
        directory="istio",
        repository="istio/istio",
        tag=_ISTIO,
        version=_ISTIO,
        installed_by=f"the CRDs the pinned Istio base Helm chart {_ISTIO} installs, picked "
        "by name out of its files/crd-all.gen.yaml",
        copyright="Copyright Istio Authors, licensed under the Apache License 2.0",
        license="LICENSE",
        files=_picked(
            "manifests/charts/base/files/crd-all.gen.yaml",
            "authorizationpolicies.security.istio.io",
            "destinationrules.networking.istio.io",
            "peerauthentications.security.istio.io",
            "requestauthentications.security.istio.io",
            "telemetries.telemetry.istio.io",
            "virtualservices.networking.istio.io",
        ),
    ),
    "ECK": Upstream(
        name="ECK",
        directory="eck",
        repository="elastic/cloud-on-k8s",
        tag=f"v{_ECK}",
        version=_ECK,
        installed_by=f"the CRDs the pinned eck-operator Helm chart {_ECK} installs (through "
        "eck-operator-crds), picked by name out of config/crds/v1/all-crds.yaml",
        copyright="Copyright Elasticsearch B.V., licensed under the Elastic License 2.0 "
        "(not an open-source licence: read LICENSE before redistributing)",
        license="LICENSE.txt",
        files=_picked(
            "config/crds/v1/all-crds.yaml",
            "elasticsearches.elasticsearch.k8s.elastic.co",
            "kibanas.kibana.k8s.elastic.co",
        ),
    ),
    "prometheus-operator": Upstream(
        name="prometheus-operator",
        directory="prometheus-operator",
        repository="prometheus-community/helm-charts",
        tag=f"kube-prometheus-stack-{_PROMETHEUS_STACK}",
        version=PROMETHEUS_OPERATOR_VERSION,
        installed_by=f"the CRDs the pinned kube-prometheus-stack Helm chart {_PROMETHEUS_STACK} "
        f"installs: prometheus-operator v{PROMETHEUS_OPERATOR_VERSION}'s, as the chart copies "
        "them (each file's first line names the upstream file)",
        copyright="Copyright The Prometheus Authors (prometheus-operator, prometheus-community "
        "helm-charts), licensed under the Apache License 2.0",
        license="LICENSE",
        files={
            name: (f"{_PROMETHEUS_CRDS}/{name}", None)
            for name in (
                "crd-podmonitors.yaml",
                "crd-prometheusrules.yaml",
                "crd-servicemonitors.yaml",
            )
        },
    ),
    "cert-manager": Upstream(
        name="cert-manager",
        directory="cert-manager",
        repository="cert-manager/cert-manager",
        tag=f"v{_CERT_MANAGER}",
        version=_CERT_MANAGER,
        installed_by=f"the source of the CRDs the cert-manager Helm chart {_CERT_MANAGER} "
        "installs (deploy/crds: Helm markers sit in comments and label values; the schema "
        "is the released one)",
        copyright="Copyright The cert-manager Authors, licensed under the Apache License 2.0",
        license="LICENSE",
        files={"crd-certificates.yaml": ("deploy/crds/crd-certificates.yaml", None)},
    ),
    "Gateway API": Upstream(
        name="Gateway API",
        directory="gateway-api",
        repository="kubernetes-sigs/gateway-api",
        tag=f"v{GATEWAY_API_VERSION}",
        version=GATEWAY_API_VERSION,
        installed_by="the standard channel of the Gateway API release the pinned Istio "
        f"{_ISTIO} is built against (installed with the cluster's Gateway controller)",
        copyright="Copyright The Kubernetes Authors, licensed under the Apache License 2.0",
        license="LICENSE",
        files={
            name: (f"config/crd/standard/{name}", None)
            for name in (
                "gateway.networking.k8s.io_gateways.yaml",
                "gateway.networking.k8s.io_httproutes.yaml",
            )
        },
    ),
}


#: the shape of a `<name>.json` file; another value reads as absent (the YAML is read)
JSON_FORMAT = 1


def json_name(yaml_name: str) -> str:
    """`<name>.json` for `<name>.yaml`."""
    return yaml_name.removesuffix(".yaml") + ".json"


def _yaml_loader() -> Any:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(data: bytes) -> Any:
    """A vendored CRD file's document, as PyYAML (libyaml when present) reads it."""
    import yaml

    return yaml.load(data.decode("utf-8"), Loader=_yaml_loader())


def json_form(data: bytes) -> str:
    """The text of the `<name>.json` of a CRD whose YAML bytes are `data`: the document
    as JSON, and the sha256 of `data`. Raises ValueError when JSON cannot say the
    document exactly (a date, a non-str key)."""
    document = read_yaml(data)
    if not _json_exact(document):
        raise ValueError("the CRD holds a value JSON cannot say exactly")
    body = {
        "format": JSON_FORMAT,
        "yaml_sha256": hashlib.sha256(data).hexdigest(),
        "crd": document,
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")) + "\n"


def from_json_form(text: bytes | str, data: bytes) -> Any:
    """The document a `<name>.json` holds when it was derived from exactly the YAML bytes
    `data`, else None (a stale, foreign or garbled file: read the YAML)."""
    try:
        body = json.loads(text)
    except ValueError:  # truncated, garbage, bad UTF-8
        return None
    if (
        not isinstance(body, dict)
        or body.get("format") != JSON_FORMAT
        or body.get("yaml_sha256") != hashlib.sha256(data).hexdigest()
        or not isinstance(body.get("crd"), dict)
    ):
        return None
    return body["crd"]


def _json_exact(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_exact(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_json_exact(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool)
