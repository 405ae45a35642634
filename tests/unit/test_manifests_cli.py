"""`migrate render`, and the manifests/infra tasks in `plan`, `apply` and `rollback`.

Pulumi's engine is absent here, so apply/rollback are exercised with the
stack calls replaced by a recorder (what would be provisioned), and the
missing-CLI path for real.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from migrate import api
from migrate.cli.app import app
from migrate.infra import cluster, stack
from migrate.manifests import applied
from migrate.manifests import tracks as tracks_state


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def no_pulumi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster, "pulumi_cli", lambda: None)


def test_render_cli_writes_phase_dirs(project: Path) -> None:
    result = run("-C", str(project), "render", "--out", "k8s", "--diagram")
    assert result.exit_code == 0, result.output
    assert "validated strictly" in result.stdout and "custom resources against" in result.stdout
    assert "not schema-checked" not in result.stdout  # every CRD the templates use is vendored
    assert (project / "k8s" / "phase-1" / "namespace-project.yaml").is_file()
    assert (project / "k8s" / "phase-2" / "helm" / "istiod.yaml").is_file()
    diagram = (project / "k8s" / "architecture.md").read_text()
    assert "```mermaid" in diagram and "flowchart LR" in diagram
    assert "Ingress_project_project_plugins" in diagram


def test_render_cli_json(project: Path) -> None:
    result = run("-C", str(project), "render", "--phase", "3", "--output", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["version"] == 1 and [p["id"] for p in document["phases"]] == [3]
    kinds = {o["kind"] for o in document["phases"][0]["objects"]}
    assert "HorizontalPodAutoscaler" in kinds
    assert document["validation"]["not_schema_checked"] == []
    assert {c["object"].split()[0] for c in document["validation"]["crd_checked"]} >= {
        "ScaledObject",
        "KafkaTopic",
    }
    assert (project / "manifests" / "phase-3").is_dir()


def test_plan_shows_the_manifest_diff_and_says_so(project: Path, no_pulumi: None) -> None:
    result = run("-C", str(project), "plan", "--phase", "1", "--output", "json")
    assert result.exit_code == 0, result.output
    tasks = {t["id"]: t for t in json.loads(result.stdout)["phases"][0]["tasks"]}
    change = tasks["cluster-setup"]["changes"][0]
    assert change["op"] == "create" and change["resource"] == "k8s:phase-1/cluster-setup"
    assert "diff against the last applied set" in change["summary"]
    assert "pulumi" in change["summary"].lower() and "not installed" in change["summary"]
    table = run("-C", str(project), "plan", "--phase", "2")
    assert "+ Deployment project/planner-blue" in table.stdout
    assert "not schema-checked" not in table.stdout  # Istio's CRDs are vendored too


def test_apply_without_the_pulumi_cli_says_how_to_fix_it(project: Path, no_pulumi: None) -> None:
    result = run("-C", str(project), "apply", "--phase", "1", "--only", "cluster-setup", "--yes")
    assert result.exit_code == 1
    assert "Pulumi CLI (`pulumi`) is not installed" in result.stderr
    assert "migrate render" in result.stderr and "kubectl" in result.stderr
    assert "Traceback" not in result.output
    assert applied.phase_records(project / ".migrate", 1) == []


class Recorder:
    """Stands in for the Pulumi stack calls: keeps what each would provision."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, list[str]]] = []
        self.objects: list[list[dict[str, Any]]] = []

    def up(
        self, ctx: Any, phase: int, records: list[dict[str, Any]], **options: Any
    ) -> stack.StackResult:
        objects = [f"{o['kind']}/{o['metadata']['name']}" for r in records for o in r["objects"]]
        self.calls.append(("up", phase, sorted(objects)))
        self.objects.append([o for r in records for o in r["objects"]])
        return stack.StackResult(f"project-phase{phase}", "up", {"create": len(objects)}, {})

    def destroy(self, ctx: Any, phase: int, **options: Any) -> stack.StackResult:
        self.calls.append(("destroy", phase, []))
        return stack.StackResult(f"project-phase{phase}", "destroy", {}, {})


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    for check in ("require_libraries", "require_cli"):
        monkeypatch.setattr(cluster, check, lambda: None)
    monkeypatch.setattr(cluster, "require_cluster", lambda context: "test")
    monkeypatch.setattr(cluster, "readiness", lambda context: "stubbed in tests")
    monkeypatch.setattr(stack, "up", recorder.up)
    monkeypatch.setattr(stack, "destroy", recorder.destroy)
    return recorder


def test_apply_records_the_applied_set_and_rollback_destroys(
    project: Path, recorder: Recorder
) -> None:
    result = api.apply(project, 1, only=["cluster-setup", "monitoring-stack"])
    assert result.run is not None
    assert [c[:2] for c in recorder.calls] == [("up", 1), ("up", 1)]
    assert "Namespace/project" in recorder.calls[-1][2]
    assert "Elasticsearch/logs" in recorder.calls[-1][2]  # both tasks share the phase stack
    records = applied.phase_records(project / ".migrate", 1)
    assert {r["task"] for r in records} == {"cluster-setup", "monitoring-stack"}

    again = api.plan(project, 1, only=["cluster-setup"])
    assert [c.op for c in again.changes] == ["noop"]

    api.rollback(project, 1, force=True)
    # newest first: monitoring-stack's undo re-ups the rest, cluster-setup's empties the stack
    assert recorder.calls[-2][:2] == ("up", 1)
    assert "Elasticsearch/logs" not in recorder.calls[-2][2]
    assert recorder.calls[-1][:2] == ("destroy", 1)
    assert applied.phase_records(project / ".migrate", 1) == []


def test_blue_green_apply_switches_and_rollback_switches_back(
    project: Path, recorder: Recorder
) -> None:
    state = project / ".migrate"
    api.apply(project, 2, only=["load-balancing"], force=True)
    first = tracks_state.load(state)
    assert first["planner"]["active"] == "blue"

    # a new version of the plugin: the idle track gets it and becomes active
    plugin = project.parent / "agents-app" / "plugins" / "planner" / "planner.py"
    plugin.write_text(plugin.read_text() + "\n# v2\n")
    the_plan = api.plan(project, 2, only=["load-balancing"])
    (change,) = the_plan.changes
    assert change.op == "update"
    assert "planner: Service switches from blue to green" in (change.detail or "")
    api.apply(project, 2, only=["load-balancing"], force=True)
    second = tracks_state.load(state)
    assert second["planner"]["active"] == "green"
    assert second["planner"]["blue"] == first["planner"]["blue"]  # the old image stays
    assert second["notifier"] == first["notifier"]  # unchanged plugins do not switch
    record = applied.load(state, 2, "load-balancing")
    assert record is not None and _selected_track(record["objects"]) == "green"

    # rolling phase 2 back undoes its steps newest first: the switch first (the
    # Service selects blue again, provisioned by an `up`), then the first apply
    api.rollback(project, 2, force=True)
    assert recorder.calls[-2][0] == "up" and _selected_track(recorder.objects[-1]) == "blue"
    assert recorder.calls[-1][0] == "destroy"
    assert tracks_state.load(state) == {}


def _selected_track(objects: list[dict[str, Any]]) -> str:
    service = next(
        o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "planner"
    )
    return str(service["spec"]["selector"]["migrate/track"])
