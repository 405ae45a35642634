"""The dependency graph and the retention of each phase, as data: no engine needed.

The graph decides which resource Pulumi waits for before creating another;
an edge too many deadlocks a phase (a Helm `--wait` that never ends), one too
few races an operator. These tests hold it on the example application.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from migrate.infra.graph import (
    GROUP_RELEASES,
    CycleError,
    Graph,
    dependency_graph,
    object_node,
)
from migrate.infra.program import StackSpec, declarations, graph_for
from migrate.infra.retention import split, with_data_kept
from migrate.infra.stack import spec_for
from migrate.manifests import applied
from migrate.manifests.render import render_project
from migrate.project import open_context


@pytest.fixture
def specs(project: Path) -> dict[int, StackSpec]:
    """Each phase's program input, as `apply` builds it phase after phase."""
    ctx = open_context(project)
    result = {}
    for phase in render_project(ctx):
        records = [t.to_record() for t in phase.tasks]
        result[phase.phase] = spec_for(ctx, phase.phase, records)
        for record in records:
            applied.save(ctx.state_dir, record)
    return result


def test_every_phase_of_the_example_is_acyclic(specs: dict[int, StackSpec]) -> None:
    for spec in specs.values():
        graph = graph_for(spec, database_secret=True)
        order = graph.order()
        assert sorted(order) == sorted(graph.nodes)
        seen: set[str] = set()
        for node in order:
            assert set(graph.needs(node)) <= seen, node
            seen.add(node)


def test_fluent_bit_waits_for_elasticsearch_not_the_other_way(
    specs: dict[int, StackSpec],
) -> None:
    graph = graph_for(specs[1], database_secret=False)
    elasticsearch = "object:Elasticsearch monitoring/logs"
    assert elasticsearch in graph.needs("release:fluent-bit")
    assert "release:fluent-bit" not in graph.needs(elasticsearch)
    assert graph.needs(elasticsearch) == ["release:eck-operator"]
    why = dict(((n, d), w) for n, d, w in graph.pairs())
    assert why[("release:fluent-bit", elasticsearch)] == (
        "reads Secret logs-es-elastic-user made from it"
    )


def test_each_custom_resource_waits_for_its_operator(specs: dict[int, StackSpec]) -> None:
    checked = 0
    for spec in specs.values():
        graph = graph_for(spec, database_secret=False)
        in_phase = {r["name"] for r in spec.releases}
        for obj in spec.objects:
            group = obj["apiVersion"].rpartition("/")[0]
            if GROUP_RELEASES.get(group) in in_phase:
                assert f"release:{GROUP_RELEASES[group]}" in graph.needs(object_node(obj))
                checked += 1
            # nothing waits for a release that does not serve it
            for dep in graph.needs(object_node(obj)):
                if dep.startswith("release:") and dep != "release:istiod":
                    assert dep == f"release:{GROUP_RELEASES.get(group)}", (obj, dep)
    assert checked >= 5  # Elasticsearch, Kibana, Istio's, Strimzi's, KEDA's


def test_the_operators_own_order(specs: dict[int, StackSpec]) -> None:
    graph = graph_for(specs[2], database_secret=False)
    assert graph.needs("release:istio-cni") == ["release:istio-base"]
    assert graph.needs("release:istiod") == ["release:istio-base", "release:istio-cni"]
    assert "release:istiod" in graph.needs("release:ingress-nginx")
    # the plugins' pods get a sidecar: the injection webhook first (namespace of phase 1)
    deployment = next(o for o in specs[2].objects if o["kind"] == "Deployment")
    assert "release:istiod" in graph.needs(object_node(deployment))
    assert graph.needs("object:PeerAuthentication project/default") == ["release:istiod"]


def test_namespaced_things_wait_for_their_namespace(specs: dict[int, StackSpec]) -> None:
    graph = graph_for(specs[1], database_secret=True)
    assert graph.needs("secret:database") == ["object:Namespace project"]
    assert "object:Namespace project" in graph.needs("object:ResourceQuota project/project-quota")


def test_a_cycle_is_refused_and_named() -> None:
    graph = Graph(
        nodes=("a", "b", "c"),
        edges={"a": {"b": "x"}, "b": {"c": "y"}, "c": {"a": "z"}},
    )
    with pytest.raises(CycleError, match=r"a -> b -> c -> a"):
        graph.order()


def test_the_old_every_release_edge_would_be_caught() -> None:
    """The defect the graph replaces: Elasticsearch waiting for every release of its phase,
    fluent-bit included, while fluent-bit waits for Elasticsearch's Secret."""
    es = {
        "apiVersion": "elasticsearch.k8s.elastic.co/v1",
        "kind": "Elasticsearch",
        "metadata": {"name": "logs", "namespace": "monitoring"},
    }
    fluent = {
        "name": "fluent-bit",
        "chart": "fluent-bit",
        "namespace": "monitoring",
        "values": {"env": [{"valueFrom": {"secretKeyRef": {"name": "logs-es-elastic-user"}}}]},
    }
    graph = dependency_graph([es], [fluent])
    edges = {node: dict(deps) for node, deps in graph.edges.items()}
    edges.setdefault(object_node(es), {})["release:fluent-bit"] = "every release"
    with pytest.raises(CycleError):
        Graph(nodes=graph.nodes, edges=edges).order()


def _removed(spec: StackSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return spec.objects, spec.releases


def test_rolling_back_phase_1_keeps_the_namespace_and_volumes(
    specs: dict[int, StackSpec],
) -> None:
    kept = split(*_removed(specs[1]))
    text = " ".join(kept.kept)
    assert "Namespace project (and every PVC in it)" in text
    assert "Elasticsearch monitoring/logs (its PVCs" in text
    assert "Helm release eck-operator" in text  # its CRDs would take every Elasticsearch
    assert "ResourceQuota project/project-quota" in kept.deleted
    assert "Helm release jaeger" in kept.deleted
    retained = {d.node for d in declarations(specs[1], True) if d.retain}
    assert {
        "object:Namespace project",
        "object:Elasticsearch monitoring/logs",
        "release:eck-operator",
    } <= retained
    assert "object:Deployment project/planner-blue" not in retained


def test_asked_otherwise_rollback_deletes(specs: dict[int, StackSpec]) -> None:
    result = split(*_removed(specs[1]), keep_data=False)
    assert not result.kept and "Namespace project" in result.deleted
    assert not any(
        d.retain for d in declarations(StackSpec(**{**specs[1].__dict__, "keep_data": False}), True)
    )


def test_stateful_sets_keep_their_claims() -> None:
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "project"},
        "spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}}]},
    }
    provisioned = with_data_kept(statefulset)
    assert provisioned["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    assert "persistentVolumeClaimRetentionPolicy" not in statefulset["spec"]  # a copy
    result = split([statefulset], [])
    assert result.deleted == ("StatefulSet project/db",)
    assert result.kept == ("the PVCs of StatefulSet project/db (retention policy Retain)",)
