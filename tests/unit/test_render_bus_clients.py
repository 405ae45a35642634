"""A Kafka bus with no Kafka cluster is refused when anything that uses the bus is rendered:
the workers, and the orchestrator alone (before, only the workers triggered the clear error
and an orchestrator-only roadmap failed later, at the lint's unrendered-address finding)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from migrate import api
from migrate.cli.app import app
from migrate.manifests.render import ManifestError, render_project
from migrate.project import open_context


def drop_components(project: Path, *components: str) -> None:
    """Remove the roadmap's tasks that render any of `components`, and the needs on them."""
    roadmap_file = project / "phases" / "roadmap.yaml"
    roadmap = yaml.safe_load(roadmap_file.read_text())
    dropped: set[str] = set()
    for phase in roadmap["phases"]:
        kept = []
        for task in phase["tasks"]:
            if set(components) & set((task.get("with") or {}).get("components", [])):
                dropped.add(task["id"])
            else:
                kept.append(task)
        phase["tasks"] = kept
    assert dropped, f"no task renders {components}"
    for phase in roadmap["phases"]:
        for task in phase["tasks"]:
            task["needs"] = [n for n in task.get("needs", []) if n not in dropped]
    roadmap_file.write_text(yaml.safe_dump(roadmap, sort_keys=False))


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_an_orchestrator_on_a_kafka_bus_without_a_kafka_cluster_is_refused(
    project: Path,
) -> None:
    drop_components(project, "workers", "kafka")  # the orchestrator stays, queue: kafka
    with pytest.raises(ManifestError) as caught:
        render_project(open_context(project))
    text = caught.value.render()
    assert "the bus is kafka (`queue: kafka`, the default)" in text
    message, hint = text.split("\n  hint: ")
    assert "the rendered `orchestrator` need" in message and "`workers`" not in message
    assert "add `kafka`" in hint and "`queue: redis`" in hint
    assert "no task of the roadmap renders the Kafka cluster (component `kafka`)" in text

    planned = run("-C", str(project), "plan")
    assert planned.exit_code == 1, planned.output
    assert "the rendered `orchestrator` need" in planned.output
    assert "runtime-address-rendered" not in planned.output  # the clear error comes first

    out = project / "out"
    rendered = run("-C", str(project), "render", "--out", str(out))
    assert rendered.exit_code == 1, rendered.output
    assert "the rendered `orchestrator` need" in rendered.output
    assert not out.exists()


def test_workers_and_orchestrator_are_both_named(project: Path) -> None:
    drop_components(project, "kafka")
    with pytest.raises(ManifestError, match="the rendered `orchestrator` and `workers` need"):
        render_project(open_context(project))


def test_an_orchestrator_with_its_kafka_cluster_plans_without_errors(project: Path) -> None:
    drop_components(project, "workers")
    report = api.plan(project).lint
    assert report is not None and [f.line() for f in report.errors] == []
