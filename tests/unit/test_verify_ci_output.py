"""`migrate ci` with an invalid roadmap still writes its three files, and output that is
not a terminal is written in whole lines."""

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


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.fixture(autouse=True)
def summary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(path))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    return path


def test_an_invalid_roadmap_still_writes_summary_junit_and_plan(
    project: Path, summary_file: Path
) -> None:
    (project / "phases" / "roadmap.yaml").write_text("phases: [{id: 1, name: x, bogus: 1}]\n")
    result = run("-C", str(project), "ci", "--plan-json", "out/plan.json", "--junit-xml",
                 "out/j.xml")  # fmt: skip
    assert result.exit_code == 1 and "bogus" in result.stderr
    summary = summary_file.read_text()
    assert summary.startswith("## migrate ci: project\n")
    assert "could not be loaded (exit 1)" in summary and "bogus" in summary
    suite = ET.parse(project / "out" / "j.xml").getroot()
    errors = [c.find("error") for c in suite.iter("testcase")]
    assert len(errors) == 1 and errors[0] is not None
    assert "bogus" in (errors[0].text or "")
    plan = json.loads((project / "out" / "plan.json").read_text())
    assert plan["version"] == 1 and "bogus" in json.dumps(plan)


def test_output_that_is_not_a_terminal_is_not_wrapped(project: Path) -> None:
    name = "a-check-with-a-name-much-longer-than-eighty-columns-" + "x" * 100
    write(project / "ok.txt", "ok\n")
    set_roadmap(project, {"id": "long", "checks": [{"name": name, "file": {"path": "ok.txt"}}]})
    result = run("-C", str(project), "verify")
    assert result.exit_code == 0, result.output
    assert name in result.stdout
    result = run("-C", str(project), "ci")
    assert name in result.stdout
