"""A `manifests` task's knobs (`queue`, `partitions`, `mtls`, ...) are read from the task
that renders their component (`components.roadmap_options`). Set on another task, a knob
was ignored without a word; now the roadmap is refused, naming the knob, the task's file
and line. `queue` belongs to the orchestrator too: with no workers, the orchestrator's
task chooses the bus, and a second, different choice is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from migrate.manifests.components import KNOB_OWNERS, ManifestsParams
from migrate.project import open_context
from tests.unit.test_render_bus_clients import drop_components, run


def edit_task(project: Path, task_id: str, **with_: Any) -> None:
    roadmap_file = project / "phases" / "roadmap.yaml"
    roadmap = yaml.safe_load(roadmap_file.read_text())
    [task] = [t for phase in roadmap["phases"] for t in phase["tasks"] if t["id"] == task_id]
    task["with"].update(with_)
    roadmap_file.write_text(yaml.safe_dump(roadmap, sort_keys=False))


def test_every_knob_names_components_that_exist() -> None:
    components = set(ManifestsParams.model_fields["components"].annotation.__args__[0].__args__)  # type: ignore[union-attr]
    assert set(KNOB_OWNERS) == set(ManifestsParams.model_fields) - {"components"}
    assert all(set(owners) <= components for owners in KNOB_OWNERS.values())


def test_a_knob_on_a_task_that_does_not_render_its_component_is_refused(project: Path) -> None:
    edit_task(project, "agent-orchestrator", partitions=12)  # a kafka knob
    planned = run("-C", str(project), "plan")
    assert planned.exit_code == 1, planned.output
    assert "`partitions` applies to `kafka`, which this task does not render" in planned.output
    assert "roadmap.yaml:" in planned.output and "tasks[0].with" in planned.output  # file, line


def test_the_default_roadmap_sets_no_knob_out_of_place(project: Path) -> None:
    ctx = open_context(project)  # check_params: every task's `with:` validated
    assert ctx.task_params


def test_with_no_workers_the_orchestrators_task_chooses_the_bus(project: Path) -> None:
    drop_components(project, "workers", "kafka")
    edit_task(project, "agent-orchestrator", queue="redis")
    planned = run("-C", str(project), "plan", "-o", "json")
    assert planned.exit_code in (0, 2), planned.output
    out = project / "out"
    rendered = run("-C", str(project), "render", "--out", str(out))
    assert rendered.exit_code == 0, rendered.output
    text = "\n".join(p.read_text() for p in out.glob("phase-3/*.yaml"))
    assert "MIGRATE_BUS" in text and "value: redis" in text
    assert "KAFKA_BOOTSTRAP_SERVERS" not in text


def test_two_different_buses_are_refused(project: Path) -> None:
    edit_task(project, "agent-orchestrator", queue="redis")  # the workers' task says kafka
    planned = run("-C", str(project), "plan")
    assert planned.exit_code == 1, planned.output
    assert "gives the orchestrator `queue: redis`" in planned.output
    assert "share one bus" in planned.output
