"""`migrate images` and the images action without a Docker engine: clear errors, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write
from tests.unit.cli_without_engine import NO_ENGINE, no_engine_fixture, run  # noqa: F401  (fixture)


@pytest.mark.parametrize("verb", ["build", "list"])
def test_no_engine_says_how_to_set_docker_host(project: Path, no_engine: None, verb: str) -> None:
    result = run("-C", str(project), "images", verb)
    assert result.exit_code == 1
    assert f"no Docker engine answers at {NO_ENGINE}" in result.stderr
    assert "DOCKER_HOST" in result.stderr and "scripts/test-services" in result.stderr
    assert "Traceback" not in result.output


def test_no_engine_in_json_mode(project: Path, no_engine: None) -> None:
    result = run("-C", str(project), "images", "build", "--output", "json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["version"] == 1 and "no Docker engine" in document["error"]
    assert "DOCKER_HOST" in document["hint"]


def test_rollback_with_nothing_recorded_needs_no_engine(project: Path, no_engine: None) -> None:
    result = run("-C", str(project), "images", "rollback")
    assert result.exit_code == 0, result.output
    assert "Nothing to roll back" in result.stdout


def test_push_needs_a_registry(project: Path, no_engine: None) -> None:
    result = run("-C", str(project), "images", "build", "--push")
    assert result.exit_code == 1 and "--push needs a registry" in result.stderr


def test_unknown_plugin(project: Path, no_engine: None) -> None:
    result = run("-C", str(project), "images", "build", "--plugin", "nope")
    assert result.exit_code == 1 and "no plugin 'nope'" in result.stderr


def test_plan_shows_one_build_per_plugin_without_an_engine(project: Path, no_engine: None) -> None:
    result = run("-C", str(project), "plan", "--phase", "2", "--output", "json")
    assert result.exit_code == 0, result.output
    [task] = [
        t
        for phase in json.loads(result.stdout)["phases"]
        for t in phase["tasks"]
        if t["id"] == "containerize-services"
    ]
    summaries = {c["resource"]: c["summary"] for c in task["changes"]}
    assert len(summaries) == 7  # six plugins and the orchestrator
    assert summaries["image:Report-Writer"].startswith("build ")
    assert "/report-writer:" in summaries["image:Report-Writer"]
    assert summaries["orchestrator-image"].startswith("build project/project-orchestrator:")


def test_plan_says_when_a_plugin_cannot_be_built(
    project: Path, example_app: Path, no_engine: None
) -> None:
    write(example_app / "plugins" / "broken" / "plugin.yaml", "entrypoint: gone:handle\n")
    result = run("-C", str(project), "plan", "--phase", "2")
    assert result.exit_code == 0, result.output
    assert "image:broken: cannot build: plugin broken: entrypoint gone:handle" in result.stdout


def test_images_task_params_are_validated(project: Path) -> None:
    roadmap = project / "phases" / "roadmap.yaml"
    roadmap.write_text(roadmap.read_text().replace("plugins: all", "plugins: everything"))
    result = run("-C", str(project), "plan")
    assert result.exit_code == 1 and "plugins" in result.stderr


def test_help_does_not_import_docker() -> None:
    code = "import sys; from migrate.cli.app import main; sys.argv=['migrate','--help']\n"
    code += "try:\n    main()\nexcept SystemExit:\n    pass\nassert 'docker' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_an_images_task_that_pushes_needs_a_registry(project: Path, no_engine: None) -> None:
    roadmap = project / "phases" / "roadmap.yaml"
    roadmap.write_text(roadmap.read_text().replace("push: false", "push: true"))
    result = run("-C", str(project), "plan", "--phase", "2")
    assert result.exit_code == 1 and "--push needs a registry" in result.stderr
