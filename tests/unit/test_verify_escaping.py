"""Hostile check names, outputs and roadmap values come out escaped in the step summary,
the Markdown report and the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from migrate import api
from migrate.cli.app import app
from migrate.report.summary import md

NAME = "marker <b>&amp;"
SCRIPT = "<script>x</script>"


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _hostile(project: Path) -> None:
    document = {
        "phases": [
            {
                "id": 1,
                "name": f"Phase {SCRIPT}",
                "description": f"about {SCRIPT}",
                "tasks": [
                    {
                        "id": "hostile",
                        "title": f"Task {NAME} | `tick` *bold*",
                        "action": "manual",
                        "checks": [
                            {"name": NAME, "command": {"run": f"echo '{SCRIPT}' >&2; exit 1"}},
                        ],
                    }
                ],
            }
        ]
    }
    (project / "phases" / "roadmap.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def test_md_escapes_html_and_markdown() -> None:
    assert md(NAME) == "marker &lt;b&gt;&amp;amp;"
    assert md(SCRIPT) == "&lt;script&gt;x&lt;/script&gt;"
    assert md("a|b *c* `d` [e](f)\nnext") == r"a\|b \*c\* \`d\` \[e\](f) next"


def test_step_summary_escapes_names_and_outputs(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    _hostile(project)
    result = run("-C", str(project), "ci")
    assert result.exit_code == 1, result.output
    text = summary.read_text()
    assert "<b>" not in text and "<script>" not in text
    assert "- **marker &lt;b&gt;&amp;amp;** (command on local://): expected exit code 0, " \
        "found 1: &lt;script&gt;x&lt;/script&gt;" in text  # fmt: skip


def test_reports_escape_roadmap_values(project: Path) -> None:
    _hostile(project)
    api.verify(project, timeout=30)
    markdown = api.report(project)
    assert "<b>" not in markdown and "<script>" not in markdown
    assert "- [ ] Task marker &lt;b&gt;&amp;amp; \\| \\`tick\\` \\*bold\\* (`hostile`)" in markdown
    assert "### Phase 1: Phase &lt;script&gt;x&lt;/script&gt;" in markdown
    assert 'hostile["Task marker #lt;b#gt;#amp;amp; | #96;tick#96; *bold*"]' in markdown
    page = api.report(project, fmt="html")
    assert "<b>" not in page and "<script>" not in page
    assert "Task marker &lt;b&gt;&amp;amp; | `tick` *bold*" in page
    assert '<input type="checkbox" disabled> Task marker' in page
