"""`migrate bench` against a real container: both sides measured, budgets enforced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from migrate import api
from migrate.cli.app import app
from tests.integration.compare.test_compare import left_over


def test_bench_measures_both_sides_and_enforces_budgets(
    built_project: Path, docker_client: Any
) -> None:
    assert not api.images_build(built_project, ["planner"], orchestrator=False).failures
    result = CliRunner().invoke(
        app,
        ["-C", str(built_project), "bench", "--plugin", "planner", "--duration", "1",
         "--concurrency", "2", "--output", "json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["version"] == 1
    (entry,) = document["plugins"]
    assert entry["plugin"] == "planner"
    for side in ("legacy", "migrated"):
        stats = entry[side]
        assert stats["errors"] == 0 and stats["requests"] > 0
        assert 0 < stats["p50_ms"] <= stats["p95_ms"] <= stats["p99_ms"]
        assert stats["rps"] > 0
    assert entry["p95_ratio"] > 0
    # the HTML report draws the last bench as an inline picture, per plugin, no script
    page = built_project / "report.html"
    report = CliRunner().invoke(
        app, ["-C", str(built_project), "report", "--format", "html", "--out", str(page)]
    )
    assert report.exit_code == 0, report.output
    html = page.read_text()
    # the latency chart, beside the roadmap's picture (also an inline SVG)
    assert html.count("<svg") - html.count('class="roadmap-diagram"') == 1
    assert "planner: latency by percentile" in html
    assert html.count("<polyline") == 2 and "<script" not in html
    # a budget no container can meet: over it, exit 1, said per plugin
    config = built_project / "migrate.yaml"
    data = yaml.safe_load(config.read_text())
    data["performance"] = {"p95_ms": 0.0001}
    config.write_text(yaml.safe_dump(data))
    over = CliRunner().invoke(
        app, ["-C", str(built_project), "bench", "--plugin", "planner", "--duration", "0.5"]
    )
    assert over.exit_code == 1
    assert "planner" in over.output and "over the budget of 0.0001 ms" in over.output
    assert left_over(docker_client, built_project) == []


def test_the_check_kinds_run_compare_and_bench(built_project: Path, docker_client: Any) -> None:
    from migrate import checks as c
    from migrate.config import load_config
    from migrate.verify import proof
    from migrate.verify.kinds import Target

    assert not api.images_build(built_project, ["planner"], orchestrator=False).failures
    target = Target("local://", None, built_project, load_config(built_project), 60)
    same = proof.RUNNERS["equivalence"](target, c.EquivalenceCheck(plugins=["planner"], sample=5))
    assert same.passed and "5 replayed inputs" in same.message, same
    fast = proof.RUNNERS["performance"](
        target, c.PerformanceCheck(plugins=["planner"], duration=0.5, p95_ms=10_000)
    )
    assert fast.passed, fast
    slow = proof.RUNNERS["performance"](
        target, c.PerformanceCheck(plugins=["planner"], duration=0.5, p95_ms=0.0001)
    )
    assert not slow.passed and "planner: p95" in slow.message
    assert left_over(docker_client, built_project) == []


def test_equivalence_and_performance_in_verify_junit_and_report(
    built_project: Path, docker_client: Any, tmp_path: Path
) -> None:
    """The two kinds through `migrate verify` as a pipeline runs it: JSON, JUnit, report."""
    import xml.etree.ElementTree as ET

    assert not api.images_build(built_project, ["planner"], orchestrator=False).failures
    roadmap = built_project / "phases" / "roadmap.yaml"
    roadmap.write_text(
        yaml.safe_dump(
            {"phases": [{"id": 1, "name": "Proof", "tasks": [{
                "id": "proof", "title": "Prove the planner", "action": "manual",
                "checks": [
                    {"name": "same answers", "equivalence": {"plugins": ["planner"], "sample": 3}},
                    {"name": "fast enough", "performance": {
                        "plugins": ["planner"], "duration": 0.5, "p95_ms": 10_000}},
                ],
            }]}]},
            sort_keys=False,
        )
    )  # fmt: skip
    junit = tmp_path / "junit.xml"
    result = CliRunner().invoke(
        app,
        ["-C", str(built_project), "verify", "--junit-xml", str(junit), "--output", "json"],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    checks = {c["name"]: c for p in document["phases"] for t in p["tasks"] for c in t["checks"]}
    assert checks["same answers"]["kind"] == "equivalence" and checks["same answers"]["passed"]
    assert checks["fast enough"]["kind"] == "performance" and checks["fast enough"]["passed"]
    cases = ET.parse(junit).getroot().iter("testcase")
    names = {  # passed: neither <failure> nor <error>
        case.attrib["name"]
        for case in cases
        if case.find("failure") is None and case.find("error") is None
    }
    assert any("same answers" in n for n in names) and any("fast enough" in n for n in names)
    page = tmp_path / "report.html"
    report = CliRunner().invoke(
        app, ["-C", str(built_project), "report", "--format", "html", "--out", str(page)]
    )
    # verified: its box is ticked
    assert report.exit_code == 0
    assert '<input type="checkbox" checked disabled> Prove the planner' in page.read_text()
    assert "<svg" in page.read_text()  # the performance check's bench, drawn
    assert left_over(docker_client, built_project) == []
