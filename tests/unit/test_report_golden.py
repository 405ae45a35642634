"""`migrate report` ticks exactly the verified tasks (a golden file), never the applied ones."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from migrate import api
from migrate.cli.app import app
from migrate.project import open_context

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "report" / "blueprint.md"


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_report_ticks_the_verified_tasks(project: Path) -> None:
    ctx = open_context(project, journal=True)
    assert ctx.journal is not None
    ctx.journal.mark_verified("ci-cd-pipelines", 1, True)
    ctx.journal.mark_verified("dev-environments", 1, True)
    ctx.journal.mark_verified("database-migration", 2, True)
    ctx.journal.mark_verified("cluster-setup", 1, False)  # verified, failing
    ctx.journal.mark_applied("monitoring-stack", 1)  # applied only: not ticked
    ctx.journal.close()
    text = api.report(project)
    # the time of the last verify (mark_verified: now) is the one line that differs per run
    stamp = re.search(r"; last verified at (\d{4}-\d\d-\d\d \d\d:\d\d UTC)\.", text)
    assert stamp is not None, text
    text = text.replace(stamp.group(1), "<time>")
    if os.environ.get("MIGRATE_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")
    ticked = [line for line in text.splitlines() if line.startswith("- [x]")]
    assert ticked == [
        "- [x] Configure CI/CD pipelines (`ci-cd-pipelines`)",
        "- [x] Establish development environments (`dev-environments`)",
        "- [x] Implement database migration (`database-migration`)",
    ]
    assert (
        "| Data loss during database migration | Backups before data migration | in place" in text
    )


def test_report_cli_markdown_and_html(project: Path) -> None:
    result = run("-C", str(project), "report", "--out", "blueprint.md")
    assert result.exit_code == 0, result.output
    assert (project / "blueprint.md").read_text().startswith("# Architecture Blueprint: project")
    result = run("-C", str(project), "report", "--format", "html", "--out", "b.html")
    assert result.exit_code == 0, result.output
    page = (project / "b.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page and "Risk Assessment" in page
    assert run("-C", str(project), "report").stdout.startswith("# Architecture Blueprint")
