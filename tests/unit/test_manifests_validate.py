"""Strict schema validation (kubernetes-validate) for the target and the newest version."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest

from migrate import api
from migrate.errors import UserError
from migrate.manifests.model import Manifest, PhaseManifests
from migrate.manifests.validate import ValidationFailed, is_core, validate, versions_for

NEWEST = ".".join(kubernetes_validate.latest_version().split(".")[:2])


def test_versions_are_the_target_and_the_newest() -> None:
    assert versions_for("1.30") == ["1.30", NEWEST]
    assert versions_for(NEWEST) == [NEWEST]


@pytest.mark.parametrize("version", ["1.30", NEWEST])
def test_every_core_object_of_the_example_validates_strictly(
    example_render: list[PhaseManifests], version: str
) -> None:
    manifests = [m for p in example_render for m in p.manifests]
    core = [m for m in manifests if is_core(m)]
    assert len(core) > 50
    for manifest in core:
        # straight through the library, not through migrate's cache
        kubernetes_validate.validate(manifest.obj, version, strict=True)
    report = validate(manifests, version)
    assert len(report.checked) == len(core)
    # every custom resource is checked against its upstream CRD (manifests/crds/)
    assert report.not_checked == [] and report.to_dict()["not_schema_checked"] == []
    assert {m.kind for m in report.crd_checked} >= {
        "PeerAuthentication",
        "DestinationRule",
        "VirtualService",
        "ServiceMonitor",
        "PodMonitor",
        "Kafka",
        "KafkaNodePool",
        "KafkaTopic",
        "Elasticsearch",
        "Kibana",
        "ScaledObject",
    }


def _manifest(obj: dict[str, object]) -> Manifest:
    return Manifest(phase=2, task="t", component="c", template="k8s/x.j2", obj=obj)


def test_a_schema_error_names_the_file_the_object_and_the_error() -> None:
    bad = _manifest(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "planner", "namespace": "acme"},
            "spec": {"ports": [{"port": "eighty"}], "sessionAfinity": "None"},
        }
    )
    with pytest.raises(ValidationFailed) as caught:
        validate([bad], "1.30")
    text = caught.value.render()
    assert "phase-2/service-acme-planner.yaml" in text
    assert "Service acme/planner" in text
    assert "Kubernetes 1.30" in text and f"Kubernetes {NEWEST}" in text
    assert "sessionAfinity" in text or "eighty" in text


def test_custom_resources_with_no_vendored_crd_are_listed_not_checked() -> None:
    widget = _manifest(
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "x", "namespace": "acme"},
            "spec": {"whatever": True},
        }
    )
    report = validate([widget], "1.30")
    assert report.not_checked == [widget] and report.checked == []
    assert report.to_dict()["not_schema_checked"][0]["object"] == "Widget acme/x"


def test_an_unknown_core_kind_fails() -> None:
    made_up = _manifest({"apiVersion": "apps/v1", "kind": "Deploymnet", "metadata": {"name": "x"}})
    with pytest.raises(ValidationFailed, match="Deploymnet"):
        validate([made_up], "1.30")


def test_a_target_version_newer_than_the_library_is_refused() -> None:
    with pytest.raises(UserError, match="newer than any schema"):
        versions_for("9.99")


def test_render_fails_on_a_template_that_renders_an_invalid_object(project: Path) -> None:
    override = project / "templates" / "k8s" / "limit-range.yaml.j2"
    override.parent.mkdir(parents=True)
    override.write_text(
        "apiVersion: v1\nkind: LimitRange\nmetadata: {name: broken, namespace: project}\n"
        "spec: {limits: [{type: Container, defualt: {cpu: 1}}]}\n"
    )
    with pytest.raises(ValidationFailed) as caught:
        api.render(project, phase=1, out=project / "out")
    assert "phase-1/limitrange-broken.yaml: LimitRange project/broken" in caught.value.render()
    assert not (project / "out").exists()
