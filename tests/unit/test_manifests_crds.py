"""The vendored upstream CRDs (manifests/crds/): coverage, strictness, provenance, pins."""

from __future__ import annotations

import copy
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.version import Version

from migrate.config import Target
from migrate.manifests.crds import UPSTREAMS
from migrate.manifests.helm import (
    CHART_VERSIONS,
    GATEWAY_API_VERSION,
    KEDA_APP_VERSION,
    KUBERNETES_SUPPORT,
    PROMETHEUS_OPERATOR_VERSION,
)
from migrate.manifests.model import Manifest, PhaseManifests
from migrate.manifests.render import render_project
from migrate.manifests.validate import (
    VENDORED_CRDS,
    ValidationFailed,
    crd_source,
    has_vendored_crd,
    is_core,
    validate,
)
from migrate.project import open_context

CRDS = files("migrate.manifests").joinpath("crds")


def _crd(file: str) -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load(files("migrate.manifests").joinpath(file).read_text())
    return crd


def _manifest(obj: dict[str, Any]) -> Manifest:
    return Manifest(phase=3, task="t", component="c", template="k8s/x.j2", obj=obj)


def _object(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "x", "namespace": "acme"},
        "spec": spec,
    }


#: valid objects of the vendored kinds the example does not render by default
HAND_MADE = [
    _object(
        "gateway.networking.k8s.io/v1",
        "Gateway",
        {
            "gatewayClassName": "istio",
            "listeners": [
                {
                    "name": "https",
                    "port": 443,
                    "protocol": "HTTPS",
                    "hostname": "agents.example.com",
                    "tls": {"mode": "Terminate", "certificateRefs": [{"name": "acme-tls"}]},
                }
            ],
        },
    ),
    _object(
        "gateway.networking.k8s.io/v1",
        "HTTPRoute",
        {
            "parentRefs": [{"name": "acme"}],
            "hostnames": ["agents.example.com"],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/plugins/planner"}}],
                    "backendRefs": [{"name": "planner", "port": 8080}],
                }
            ],
        },
    ),
    _object(
        "cert-manager.io/v1",
        "Certificate",
        {
            "secretName": "acme-tls",
            "dnsNames": ["agents.example.com"],
            "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"},
        },
    ),
    _object(
        "security.istio.io/v1",
        "RequestAuthentication",
        {
            "selector": {"matchLabels": {"app": "planner"}},
            "jwtRules": [
                {"issuer": "https://auth.example.com/", "jwksUri": "https://auth.example.com/jwks"}
            ],
        },
    ),
    _object(
        "security.istio.io/v1",
        "AuthorizationPolicy",
        {
            "action": "ALLOW",
            "rules": [
                {
                    "from": [{"source": {"requestPrincipals": ["*"]}}],
                    "to": [{"operation": {"methods": ["POST"], "paths": ["/invoke"]}}],
                }
            ],
        },
    ),
    _object(
        "telemetry.istio.io/v1",
        "Telemetry",
        {"tracing": [{"providers": [{"name": "otel"}], "randomSamplingPercentage": 10.0}]},
    ),
    _object(
        "monitoring.coreos.com/v1",
        "PrometheusRule",
        {"groups": [{"name": "migrate", "rules": [{"alert": "Down", "expr": "up == 0"}]}]},
    ),
]


@pytest.fixture
def rendered(example_render: list[PhaseManifests]) -> list[Manifest]:
    return [m for p in example_render for m in p.manifests]


def _samples(rendered: list[Manifest]) -> list[Manifest]:
    """One object of every vendored kind: the example's first, or a hand-made one."""
    by_kind: dict[tuple[str, str], Manifest] = {}
    for m in [*rendered, *(_manifest(obj) for obj in HAND_MADE)]:
        if has_vendored_crd(m):
            by_kind.setdefault((m.group, m.kind), m)
    return list(by_kind.values())


def test_every_custom_resource_the_example_renders_has_a_vendored_crd(
    rendered: list[Manifest],
) -> None:
    custom = [m for m in rendered if not is_core(m)]
    assert {m.kind for m in custom} >= {"Kafka", "VirtualService", "Elasticsearch", "PodMonitor"}
    assert [m.ref for m in custom if not has_vendored_crd(m)] == []
    report = validate(custom, "1.30")  # and each validates against it
    assert len(report.crd_checked) == len(custom)


def test_the_gateway_api_and_jwt_variant_is_covered_and_valid(tmp_path: Path) -> None:
    """ingress.controller gateway (Gateway, HTTPRoute) and jwt (RequestAuthentication,
    AuthorizationPolicy): every custom resource validates against its vendored CRD."""
    import shutil

    from migrate import api
    from tests.conftest import EXAMPLE_APP

    shutil.copytree(EXAMPLE_APP, tmp_path / "app")
    api.init(tmp_path / "project", tmp_path / "app")
    config_file = tmp_path / "project" / "migrate.yaml"
    config = yaml.safe_load(config_file.read_text())
    config.setdefault("target", {})["ingress"] = {
        "controller": "gateway",
        "class_name": "istio",
        "host": "agents.example.com",
        "cluster_issuer": "letsencrypt",
        "jwt": {"issuer": "https://auth.example.com/", "jwks_uri": "https://auth.example.com/k"},
    }
    config_file.write_text(yaml.safe_dump(config))
    rendered = render_project(open_context(tmp_path / "project"))
    custom = [m for p in rendered for m in p.manifests if not is_core(m)]
    assert {"Gateway", "HTTPRoute", "RequestAuthentication", "AuthorizationPolicy"} <= {
        m.kind for m in custom
    }
    report = validate(custom, "1.30")
    assert report.not_checked == [] and len(report.crd_checked) == len(custom)


def test_there_is_a_sample_of_every_vendored_kind(rendered: list[Manifest]) -> None:
    assert {(m.group, m.kind) for m in _samples(rendered)} == set(VENDORED_CRDS)


def test_every_sample_validates_against_its_crd(rendered: list[Manifest]) -> None:
    report = validate(_samples(rendered), "1.30")
    assert len(report.crd_checked) == len(VENDORED_CRDS) and report.not_checked == []


@pytest.mark.parametrize("key", sorted(VENDORED_CRDS), ids=lambda key: f"{key[1]}")
def test_an_unknown_field_fails_naming_the_crd_source(
    rendered: list[Manifest], key: tuple[str, str]
) -> None:
    (sample,) = [m for m in _samples(rendered) if (m.group, m.kind) == key]
    obj = copy.deepcopy(sample.obj)
    obj["spec"]["replicaz"] = 3
    broken = _manifest(obj)
    with pytest.raises(ValidationFailed) as caught:
        validate([broken], "1.30")
    text = caught.value.render()
    source = VENDORED_CRDS[key].source
    assert f"({source} {UPSTREAMS[source].version} CRD)" in text
    assert f"{broken.ref} ({crd_source(broken)}): spec: " in text
    assert "'replicaz' was unexpected" in text


def test_a_nested_unknown_field_fails_too(rendered: list[Manifest]) -> None:
    (pool,) = [m for m in rendered if m.kind == "KafkaNodePool"]
    obj = copy.deepcopy(pool.obj)
    obj["spec"]["storage"]["volumes"][0]["sise"] = "20Gi"
    with pytest.raises(ValidationFailed, match=r"spec\.storage\.volumes\.0: .*'sise'"):
        validate([_manifest(obj)], "1.30")


def test_a_removed_api_version_says_which_the_crd_serves(rendered: list[Manifest]) -> None:
    (topic,) = [m for m in rendered if m.kind == "KafkaTopic"][:1]
    obj = copy.deepcopy(topic.obj)
    obj["apiVersion"] = "kafka.strimzi.io/v1beta2"
    with pytest.raises(ValidationFailed) as caught:
        validate([_manifest(obj)], "1.30")
    text = caught.value.render()
    strimzi = CHART_VERSIONS["strimzi-kafka-operator"]
    assert f"kafka.strimzi.io/v1beta2 is not a version the vendored Strimzi {strimzi} CRD" in text
    assert "(it serves kafka.strimzi.io/v1): change the apiVersion" in text


@pytest.mark.parametrize("key", sorted(VENDORED_CRDS), ids=lambda key: f"{key[1]}")
def test_each_vendored_file_defines_its_kind(key: tuple[str, str]) -> None:
    group, kind = key
    vendored = VENDORED_CRDS[key]
    crd = _crd(vendored.file)
    assert crd["kind"] == "CustomResourceDefinition"
    assert (crd["spec"]["group"], crd["spec"]["names"]["kind"]) == (group, kind)
    upstream = UPSTREAMS[vendored.source]
    assert vendored.file.startswith(f"crds/{upstream.directory}/")
    assert vendored.file.rsplit("/", 1)[1] in upstream.files


def test_every_vendored_file_is_used_and_listed() -> None:
    used = {v.file for v in VENDORED_CRDS.values()}
    on_disk = {
        f"crds/{directory.name}/{file.name}"
        for directory in CRDS.iterdir()
        if directory.is_dir() and not directory.name.startswith("__")
        for file in directory.iterdir()
        if file.name.endswith(".yaml")
    }
    assert on_disk == used
    assert {u.directory for u in UPSTREAMS.values()} == {
        d.name for d in CRDS.iterdir() if d.is_dir() and not d.name.startswith("__")
    }


@pytest.mark.parametrize("name", sorted(UPSTREAMS))
def test_every_vendored_directory_has_the_licence_and_a_readme_naming_the_tag(name: str) -> None:
    upstream = UPSTREAMS[name]
    directory = CRDS.joinpath(upstream.directory)
    licence = directory.joinpath("LICENSE").read_text()
    assert ("Apache License" in licence and "Version 2.0" in licence) or (
        name == "ECK" and licence.startswith("Elastic License 2.0")
    )
    readme = directory.joinpath("README.md").read_text()
    assert f"https://github.com/{upstream.repository} at {upstream.tag} " in readme
    for file, (path, crd) in upstream.files.items():
        assert f"- `{file}`: `{path}`" in readme
        if crd:
            assert _crd(f"crds/{upstream.directory}/{file}")["metadata"]["name"] == crd
    assert f"- `LICENSE`: `{upstream.license}`" in readme


def test_the_vendored_versions_are_the_pinned_ones() -> None:
    """Bump a pin, then run scripts/refresh-crds: these say which half was forgotten."""
    assert UPSTREAMS["KEDA"].version == KEDA_APP_VERSION == CHART_VERSIONS["keda"]
    assert UPSTREAMS["Strimzi"].tag == CHART_VERSIONS["strimzi-kafka-operator"]
    # the base chart installs Istio's CRDs; istiod and cni must be the same release
    assert UPSTREAMS["Istio"].tag == CHART_VERSIONS["base"] == CHART_VERSIONS["istiod"]
    assert CHART_VERSIONS["cni"] == CHART_VERSIONS["base"]
    assert UPSTREAMS["ECK"].tag == f"v{CHART_VERSIONS['eck-operator']}"
    assert UPSTREAMS["cert-manager"].tag == f"v{CHART_VERSIONS['cert-manager']}"
    assert UPSTREAMS["prometheus-operator"].tag == (
        f"kube-prometheus-stack-{CHART_VERSIONS['kube-prometheus-stack']}"
    )
    assert UPSTREAMS["Gateway API"].tag == f"v{GATEWAY_API_VERSION}"
    # where the upstream files say their own version, it is the pinned one
    for file in UPSTREAMS["prometheus-operator"].files:
        crd = _crd(f"crds/prometheus-operator/{file}")
        annotation = crd["metadata"]["annotations"]["operator.prometheus.io/version"]
        assert annotation == PROMETHEUS_OPERATOR_VERSION
    for file in UPSTREAMS["Gateway API"].files:
        crd = _crd(f"crds/gateway-api/{file}")
        annotation = crd["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"]
        assert annotation == f"v{GATEWAY_API_VERSION}"
    # Strimzi 1.x serves kafka.strimzi.io/v1 only
    kafka = _crd("crds/strimzi/040-Crd-kafka.yaml")
    assert [v["name"] for v in kafka["spec"]["versions"] if v["served"]] == ["v1"]


def test_every_pin_supports_the_default_kubernetes_version() -> None:
    assert set(KUBERNETES_SUPPORT) == set(CHART_VERSIONS)
    default = Version(Target.model_fields["kubernetes_version"].default)
    for chart, (oldest, newest) in KUBERNETES_SUPPORT.items():
        assert oldest is None or Version(oldest) <= default, chart
        assert newest is None or default <= Version(newest), chart


def test_the_docs_list_the_pinned_versions() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "manifests.md").read_text()
    for chart, version in CHART_VERSIONS.items():
        if chart not in ("base", "cni", "cert-manager"):
            assert f"{chart} {version}" in text, chart
    assert f"istio base, cni, istiod {CHART_VERSIONS['istiod']}" in text
    for name, upstream in UPSTREAMS.items():
        assert f"| {name} (`{upstream.directory}/`" in text, name
        assert f"| {upstream.version} " in text, name
