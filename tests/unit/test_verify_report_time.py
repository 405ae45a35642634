"""The report says when `verify` last ran, and counts its phases in good English."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import yaml

from migrate import api


def _one_phase(project: Path) -> None:
    document = {"phases": [{"id": 1, "name": "Only", "tasks": [
        {"id": "ok", "title": "Passes", "action": "manual", "checks": [
            {"name": "true", "command": {"run": "true"}}]},
    ]}]}  # fmt: skip
    (project / "phases" / "roadmap.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def test_the_report_says_when_verify_last_ran(project: Path) -> None:
    _one_phase(project)
    before = api.report(project)
    assert "tasks verified; never verified yet." in before
    assert " in 1 phase." in before and "1 phases" not in before

    began = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    assert api.verify(project, timeout=30).passed
    ended = dt.datetime.now(dt.UTC)
    text = api.report(project)
    found = re.search(r"tasks verified; last verified at (\S+ \S+) UTC\.", text)
    assert found is not None, text
    when = dt.datetime.strptime(found.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=dt.UTC)
    assert began <= when <= ended
    assert f"last verified at {found.group(1)} UTC" in api.report(project, fmt="html")
