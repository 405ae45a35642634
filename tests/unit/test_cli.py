"""The CLI through typer's CliRunner: exit codes 0/1/2, JSON on stdout only, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from migrate.cli.app import app
from tests.conftest import write

COMMANDS = [
    "init",
    "plan",
    "apply",
    "rollback",
    "verify",
    "status",
    "render",
    "ci",
    "report",
    "data",
    "images",
    "infra",
]


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_help_lists_every_command_with_a_line() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in COMMANDS:
        assert f" {command} " in result.stdout, command
    for group, subs in {
        "data": ["load", "verify", "rollback"],
        "images": ["build", "list", "rollback"],
        "infra": ["preview", "up", "destroy"],
    }.items():
        sub = run(group, "--help")
        assert sub.exit_code == 0
        for name in subs:
            assert f" {name} " in sub.stdout


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0 and result.stdout.startswith("migrate ")


def test_init_then_plan(tmp_path: Path, example_app: Path) -> None:
    project = tmp_path / "demo"
    result = run("-C", str(project), "init", "--source", str(example_app))
    assert result.exit_code == 0, result.output
    assert (
        "Report-Writer" in result.stdout
        and "2.1.0" in result.stdout
        and "writer:handle" in result.stdout
    )
    assert "metrics/daily" in result.stdout and "jsonl" in result.stdout
    assert (project / "migrate.yaml").is_file() and (project / "phases" / "roadmap.yaml").is_file()

    again = run("-C", str(project), "init", "--source", str(example_app))
    assert again.exit_code == 1 and "already exists" in again.stderr and "--force" in again.stderr

    plan = run("-C", str(project), "plan")
    assert plan.exit_code == 0
    assert "+ file:.github/workflows/migrate.yml" in plan.stdout
    assert "Plan: " in plan.stdout and "to create" in plan.stdout


def test_init_source_is_relative_to_the_project_dir(tmp_path: Path, example_app: Path) -> None:
    result = run("-C", str(tmp_path / "demo"), "init", "--source", "../agents-app")
    assert result.exit_code == 0, result.output
    assert "path: ../agents-app" in (tmp_path / "demo" / "migrate.yaml").read_text()


def test_init_json(tmp_path: Path, example_app: Path) -> None:
    result = run(
        "-C", str(tmp_path / "p"), "init", "--source", str(example_app), "--output", "json"
    )
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert len(document["plugins"]) == 6 and len(document["datasets"]) == 7


def test_plan_json_is_the_design_document(project: Path) -> None:
    result = run("-C", str(project), "plan", "--output", "json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)  # stdout holds JSON only
    assert document["version"] == 1 and document["project"] == "project"
    assert [p["id"] for p in document["phases"]] == [1, 2, 3, 4]
    task = document["phases"][0]["tasks"][1]
    assert set(task) >= {"id", "title", "action", "done", "changes"}
    assert task["changes"][0] == {
        "op": "create",
        "resource": "file:.github/workflows/migrate.yml",
        "summary": task["changes"][0]["summary"],
        "reversible": True,  # rollback puts back what was there (issue 15, item 2)
    }
    assert set(document["summary"]) == {"create", "update", "delete", "noop"}
    ops = [c["op"] for p in document["phases"] for t in p["tasks"] for c in t["changes"]]
    assert document["summary"]["create"] == ops.count("create")


def test_plan_phase_and_detailed_exitcode(project: Path) -> None:
    result = run(
        "-C", str(project), "plan", "--phase", "1", "--output", "json", "--detailed-exitcode"
    )
    assert result.exit_code == 2
    assert [p["id"] for p in json.loads(result.stdout)["phases"]] == [1]
    write(
        project / "phases" / "roadmap.yaml",
        "phases:\n  - id: 1\n    name: Only manual\n    tasks:\n"
        "      - {id: m, title: M, action: manual}\n",
    )
    result = run("-C", str(project), "plan", "--detailed-exitcode")
    assert result.exit_code == 0
    assert "0 to create, 0 to update, 0 to delete, 1 unchanged" in result.stdout


def test_unknown_phase(project: Path) -> None:
    result = run("-C", str(project), "plan", "--phase", "9")
    assert result.exit_code == 1
    assert "there is no phase 9" in result.stderr and "phases 1, 2, 3, 4" in result.stderr


def test_errors_are_json_too(project: Path) -> None:
    result = run("-C", str(project), "plan", "--phase", "9", "--output", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"] == "there is no phase 9"


@pytest.mark.parametrize(
    ("roadmap", "expected"),
    [
        ("phases: [\n", "malformed YAML"),
        (
            "phases:\n  - id: 1\n    name: x\n    colour: red\n",
            "roadmap.yaml:4: phases[0].colour: unknown key",
        ),
        ("phases:\n  - id: one\n    name: x\n", "roadmap.yaml:2: phases[0].id"),
    ],
)
def test_bad_roadmap_gives_a_message_not_a_traceback(
    project: Path, roadmap: str, expected: str
) -> None:
    (project / "phases" / "roadmap.yaml").write_text(roadmap)
    result = run("-C", str(project), "plan")
    assert result.exit_code == 1
    assert expected in result.stderr
    assert "Traceback" not in result.output


def test_missing_project_and_source(tmp_path: Path) -> None:
    result = run("-C", str(tmp_path / "none"), "status")
    assert result.exit_code == 1 and "does not exist" in result.stderr
    result = run("-C", str(tmp_path), "plan")
    assert (
        result.exit_code == 1
        and "no migrate.yaml" in result.stderr
        and "migrate init" in result.stderr
    )
    result = run("-C", str(tmp_path / "p"), "init", "--source", str(tmp_path / "missing"))
    assert result.exit_code == 1 and "does not exist" in result.stderr
    assert not (tmp_path / "p" / "migrate.yaml").exists()


def test_apply_and_status(project: Path) -> None:
    result = run("-C", str(project), "apply", "--phase", "1", "--only", "ci-cd-pipelines")
    assert result.exit_code == 1 and "pass --yes" in result.stderr  # no terminal to ask on
    assert not (project / ".github").exists()
    result = run("-C", str(project), "apply", "--phase", "1", "--only", "ci-cd-pipelines", "--yes")
    assert result.exit_code == 0, result.output
    assert (project / ".github" / "workflows" / "migrate.yml").is_file()
    status = run("-C", str(project), "status", "--output", "json")
    assert status.exit_code == 0
    tasks = {t["id"]: t for p in json.loads(status.stdout)["phases"] for t in p["tasks"]}
    assert tasks["ci-cd-pipelines"]["last_applied"] is not None
    assert tasks["ci-cd-pipelines"]["done"] is True  # apply ran its checks: both files exist
    assert tasks["cluster-setup"]["last_applied"] is None
    table = run("-C", str(project), "status")
    assert table.exit_code == 0 and "ci-cd-pipelines" in table.stdout


def test_apply_json(project: Path) -> None:
    result = run(
        "-C",
        str(project),
        "apply",
        "--phase",
        "1",
        "--only",
        "dev-environments",
        "--yes",
        "-o",
        "json",
    )
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["tasks"][0]["task"] == "dev-environments"
    # compose.yaml, its password file (dev/.env, mode 0600) and devcontainer.json
    assert len(document["tasks"][0]["applied"]) == 3


def test_apply_refuses_tasks_it_cannot_run_here(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from migrate.infra import cluster

    monkeypatch.setattr(cluster, "pulumi_cli", lambda: None)
    result = run("-C", str(project), "apply", "--phase", "1", "--yes")
    assert result.exit_code == 1
    assert "the Pulumi CLI (`pulumi`) is not installed" in result.stderr
    assert not (project / ".github").exists()


def test_rollback_cli(project: Path) -> None:
    assert (
        run(
            "-C", str(project), "apply", "--phase", "1", "--only", "ci-cd-pipelines", "--yes"
        ).exit_code
        == 0
    )
    result = run("-C", str(project), "rollback", "--yes")
    assert result.exit_code == 0, result.output
    assert "Rolled back phase 1: 2 change(s) undone" in result.stdout
    assert not (project / ".gitlab-ci.yml").exists()
    result = run("-C", str(project), "rollback", "--yes")
    assert result.exit_code == 1 and "nothing to roll back" in result.stderr


def test_usage_errors_keep_exit_code_2(project: Path) -> None:
    assert run("-C", str(project), "plan", "--phase", "zero").exit_code == 2
    assert run("-C", str(project), "apply").exit_code == 2  # --phase is required


def test_unexpected_errors_are_short_and_logged(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import migrate.api

    def boom(*args: object, **kwargs: object) -> None:
        password = "hunter2"  # a local that must not be printed
        raise RuntimeError(f"connect to postgresql://u:{password}@h/db failed")

    monkeypatch.setattr(migrate.api, "status", boom)
    result = run("-C", str(project), "status")
    assert result.exit_code == 1
    assert "internal error: RuntimeError" in result.stderr
    assert "hunter2" not in result.output
    log = project / ".migrate" / "debug.log"
    assert "Traceback" in log.read_text() and "hunter2" not in log.read_text()
