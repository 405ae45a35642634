"""The inline Pulumi program of each phase, run against Pulumi's unit-test mocks.

`pulumi.runtime.set_mocks` replaces the engine: every resource the program
registers reaches `new_resource` with its type, name, inputs and provider.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pulumi
import pytest

from migrate.infra.program import StackSpec, build_program, resource_name
from migrate.infra.stack import spec_for
from migrate.manifests import applied
from migrate.manifests.render import render_project
from migrate.project import open_context
from migrate.secrets import Secret

PASSWORD = "mock-pa55word"


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        if args.typ == "pulumi:pulumi:StackReference":
            return f"{args.name}-id", {"outputs": {"namespace": "project"}}
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None


def run_program(spec: StackSpec, organization: str = "organization") -> Mocks:
    # Pulumi's mocks use the thread's current event loop; an earlier asyncio.run() in this
    # process (bench's load generator, in other tests) leaves none set
    asyncio.set_event_loop(asyncio.new_event_loop())
    mocks = Mocks()
    pulumi.runtime.set_mocks(
        mocks,
        project=spec.project,
        stack=f"project-phase{spec.phase}",
        organization=organization,
    )

    @pulumi.runtime.test  # type: ignore[untyped-decorator,misc]
    def program() -> Any:
        build_program(spec)()
        return pulumi.Output.from_input(True)

    program()
    return mocks


def phase_spec(project: Path, phase: int, **changes: Any) -> StackSpec:
    ctx = open_context(project)
    (rendered,) = render_project(ctx, [phase])
    records = [t.to_record() for t in rendered.tasks]
    spec = spec_for(ctx, phase, records)
    return StackSpec(**{**spec.__dict__, **changes})


def by_type(mocks: Mocks, typ: str) -> dict[str, pulumi.runtime.MockResourceArgs]:
    return {r.name: r for r in mocks.resources if r.typ == typ}


@pytest.mark.parametrize("phase", [1, 2, 3, 4])
def test_every_rendered_object_is_registered_through_the_provider(
    project: Path, phase: int
) -> None:
    spec = phase_spec(project, phase, kube_context="staging")
    mocks = run_program(spec)
    (provider,) = [r for r in mocks.resources if r.typ == "pulumi:providers:kubernetes"]
    assert provider.name == "kubernetes" and provider.inputs["context"] == "staging"
    registered = {(r.typ, r.name): r for r in mocks.resources if r.typ.startswith("kubernetes:")}
    for obj in spec.objects:
        group_version = (
            obj["apiVersion"] if "/" in obj["apiVersion"] else f"core/{obj['apiVersion']}"
        )
        key = (f"kubernetes:{group_version}:{obj['kind']}", resource_name(obj))
        assert key in registered, key
        resource = registered[key]
        assert resource.provider and resource.provider.endswith("::kubernetes::kubernetes-id")
        assert resource.inputs["metadata"]["name"] == obj["metadata"]["name"]
        if "namespace" in obj["metadata"]:
            assert resource.inputs["metadata"]["namespace"] == obj["metadata"]["namespace"]
    releases = by_type(mocks, "kubernetes:helm.sh/v3:Release")
    assert set(releases) == {r["name"] for r in spec.releases}


def test_phase1_helm_releases_are_pinned(project: Path) -> None:
    mocks = run_program(phase_spec(project, 1))
    releases = by_type(mocks, "kubernetes:helm.sh/v3:Release")
    stack = releases["kube-prometheus-stack"].inputs
    assert stack["chart"] == "kube-prometheus-stack" and stack["version"] == "88.5.3"
    assert stack["namespace"] == "monitoring" and stack["createNamespace"] is True
    assert stack["repositoryOpts"]["repo"].startswith("https://")
    assert {"jaeger", "eck-operator", "fluent-bit"} <= set(releases)


def test_nested_fields_keep_kubernetes_spelling(project: Path) -> None:
    mocks = run_program(phase_spec(project, 2))
    deployment = by_type(mocks, "kubernetes:apps/v1:Deployment")["project/planner-blue"]
    pod = deployment.inputs["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    binding_mocks = run_program(phase_spec(project, 1))
    binding = by_type(binding_mocks, "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
    assert binding["project/deployer"].inputs["roleRef"]["name"] == "deployer"


def test_database_password_is_a_pulumi_secret(project: Path) -> None:
    url = f"postgresql://app:{PASSWORD}@db:5432/app"
    spec = phase_spec(project, 1, database_url=Secret(url))
    mocks = run_program(spec)
    secret = by_type(mocks, "kubernetes:core/v1:Secret")["project/project-database"]
    assert secret.inputs["metadata"]["name"] == "project-database"
    value = secret.inputs["stringData"]
    # a secret output is serialised wrapped with Pulumi's secret signature
    assert value[pulumi.runtime.rpc._special_sig_key] == pulumi.runtime.rpc._special_secret_sig
    assert value["value"] == {"url": url}
    # no other resource carries it
    for resource in mocks.resources:
        if resource is not secret:
            assert PASSWORD not in repr(resource.inputs)


def test_no_database_secret_without_a_url_or_outside_the_namespace_phase(project: Path) -> None:
    assert not by_type(run_program(phase_spec(project, 1)), "kubernetes:core/v1:Secret")
    spec = phase_spec(project, 2, database_url=Secret("postgresql://a:b@c/d"))
    assert not by_type(run_program(spec), "kubernetes:core/v1:Secret")


def test_later_phases_depend_on_the_previous_stack(project: Path) -> None:
    ctx = open_context(project)
    (phase1,) = render_project(ctx, [1])
    for task in phase1.tasks:
        applied.save(ctx.state_dir, task.to_record())
    spec = phase_spec(project, 2)
    assert spec.previous_stack == "project-phase1"
    # fully qualified in the program's own organization: a DIY backend's "organization",
    # or a Pulumi Cloud organization
    mocks = run_program(spec, organization="acme")
    (reference,) = [r for r in mocks.resources if r.typ == "pulumi:pulumi:StackReference"]
    assert reference.name == "acme/project/project-phase1"
    service = by_type(mocks, "kubernetes:core/v1:Service")["project/planner"]
    assert service.inputs["metadata"]["namespace"] == "project"  # from the stack output


def test_stack_names_and_backend(project: Path) -> None:
    from migrate.infra.stack import backend_url, stack_name

    ctx = open_context(project)
    assert stack_name(ctx, 3) == "project-phase3"
    assert backend_url(ctx) == (project / ".migrate" / "pulumi").resolve().as_uri()


def test_helm_releases_are_installed_under_their_own_names(project: Path) -> None:
    """Without `name`, pulumi-kubernetes names a release `<name>-<hex>`, and the Services the
    workloads point at (jaeger-collector.monitoring.svc) would be named differently."""
    for phase in (1, 2, 3):
        spec = phase_spec(project, phase)
        releases = by_type(run_program(spec), "kubernetes:helm.sh/v3:Release")
        assert releases
        for name, release in releases.items():
            assert release.inputs["name"] == name
            assert release.inputs["atomic"] is True and release.inputs["cleanupOnFail"] is True
            assert release.inputs["timeout"] >= 300
    jaeger = by_type(run_program(phase_spec(project, 1)), "kubernetes:helm.sh/v3:Release")
    assert jaeger["jaeger"].inputs["name"] == "jaeger"  # -> Service jaeger-collector


def test_release_names_are_stable_across_renders(project: Path) -> None:
    first = [r["name"] for p in (1, 2, 3) for r in phase_spec(project, p).releases]
    again = [r["name"] for p in (1, 2, 3) for r in phase_spec(project, p).releases]
    assert first == again and len(set(first)) == len(first)
    assert "jaeger" in first and not any(re.search(r"-[0-9a-f]{7,}$", n) for n in first)


def test_registration_follows_the_dependency_graph(project: Path) -> None:
    """The SDK registers a resource only once its depends_on are registered: the mocks see
    the operator before its custom resources, Elasticsearch before fluent-bit."""
    mocks = run_program(phase_spec(project, 1))
    order = [r.name for r in mocks.resources]
    assert order.index("eck-operator") < order.index("monitoring/logs")
    assert order.index("monitoring/logs") < order.index("fluent-bit")
    mocks = run_program(phase_spec(project, 2))
    order = [r.name for r in mocks.resources]
    assert order.index("istio-base") < order.index("istio-cni") < order.index("istiod")
    assert order.index("istiod") < order.index("ingress-nginx")


def test_elasticsearch_keeps_its_volumes_when_deleted(project: Path) -> None:
    mocks = run_program(phase_spec(project, 1))
    logs = by_type(mocks, "kubernetes:elasticsearch.k8s.elastic.co/v1:Elasticsearch")
    assert logs["monitoring/logs"].inputs["spec"]["volumeClaimDeletePolicy"] == (
        "DeleteOnScaledownOnly"
    )
    mocks = run_program(phase_spec(project, 1, keep_data=False))
    logs = by_type(mocks, "kubernetes:elasticsearch.k8s.elastic.co/v1:Elasticsearch")
    assert "volumeClaimDeletePolicy" not in logs["monitoring/logs"].inputs["spec"]


def test_database_url_from_the_stack_config_when_not_given(project: Path) -> None:
    """A rollback run without MIGRATE_DATABASE_URL keeps the Secret: the URL an earlier run
    stored in the stack's config (a secret) is used."""
    url = f"postgresql://app:{PASSWORD}@db:5432/app"
    pulumi.runtime.set_all_config({"migrate:databaseUrl": url}, secret_keys=["migrate:databaseUrl"])
    try:
        spec = phase_spec(project, 1, database_url=None)
        secret = by_type(run_program(spec), "kubernetes:core/v1:Secret")
        assert set(secret) == {"project/project-database"}
    finally:
        pulumi.runtime.set_all_config({})
