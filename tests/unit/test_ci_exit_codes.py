"""`migrate ci`: exit 0 (all verified, nothing pending), 2 (pending, checks pass), 1
(a check failed); the JSON plan, the JUnit report and $GITHUB_STEP_SUMMARY."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from migrate.cli.app import app
from tests.conftest import write
from tests.integration.verify.conftest import set_roadmap

FILES_TASK = {
    "id": "ci-files",
    "action": "files",
    "with": {"files": [{"template": "ci/gitlab-ci.yml.j2", "path": ".gitlab-ci.yml"}]},
    "checks": [{"name": "ok", "file": {"path": "ok.txt"}}],
}


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def ci(project: Path, *extra: str) -> Any:
    return run("-C", str(project), "ci", "--plan-json", "plan.json", "--junit-xml", "j.xml", *extra)


@pytest.fixture(autouse=True)
def summary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(path))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    return path


def test_pending_changes_and_passing_checks_exit_2(project: Path, summary_file: Path) -> None:
    write(project / "ok.txt", "ok\n")
    set_roadmap(project, FILES_TASK)
    result = ci(project)
    assert result.exit_code == 2, result.output
    plan = json.loads((project / "plan.json").read_text())
    assert plan["version"] == 1 and plan["summary"]["create"] == 1
    cases = list(ET.parse(project / "j.xml").getroot().iter("testcase"))
    assert [c.get("classname") for c in cases] == ["1.ci-files"]
    text = summary_file.read_text()
    assert text.startswith("## migrate ci: project") and "changes are pending" in text
    assert "| 1 | ci-files | 1 | 1/1 passed | yes |" in text


def test_all_verified_and_nothing_pending_exit_0(project: Path, summary_file: Path) -> None:
    write(project / "ok.txt", "ok\n")
    set_roadmap(project, FILES_TASK)
    assert run("-C", str(project), "apply", "--phase", "1", "--yes").exit_code == 0
    summary_file.write_text("earlier step\n")
    result = ci(project)
    assert result.exit_code == 0, result.output
    assert "everything is verified and nothing is pending" in result.stdout
    text = summary_file.read_text()
    assert text.startswith("earlier step\n## migrate ci")  # appended, not overwritten


def test_a_failing_check_exits_1(project: Path, summary_file: Path) -> None:
    set_roadmap(project, FILES_TASK)  # ok.txt is missing
    result = ci(project)
    assert result.exit_code == 1, result.output
    failure = next(ET.parse(project / "j.xml").getroot().iter("failure"))
    assert failure.get("message") == "expected ok.txt to exist, found nothing there"
    assert "### Failed checks" in summary_file.read_text()


def test_an_invalid_roadmap_exits_1(project: Path) -> None:
    (project / "phases" / "roadmap.yaml").write_text("phases: [{id: 1, name: x, bogus: 1}]\n")
    result = ci(project)
    assert result.exit_code == 1 and "bogus" in result.stderr


def test_the_example_project_plans_and_verifies_offline(project: Path) -> None:
    result = ci(project, "--phase", "1")
    assert result.exit_code == 1  # nothing is applied: its checks fail
    plan = json.loads((project / "plan.json").read_text())
    assert plan["summary"]["create"] > 0
    assert len(list(ET.parse(project / "j.xml").getroot().iter("testcase"))) == 7
