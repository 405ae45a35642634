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
    image_project: Path, docker_client: Any
) -> None:
    assert not api.images_build(image_project, ["planner"], orchestrator=False).failures
    result = CliRunner().invoke(
        app,
        ["-C", str(image_project), "bench", "--plugin", "planner", "--duration", "1",
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
    # a budget no container can meet: over it, exit 1, said per plugin
    config = image_project / "migrate.yaml"
    data = yaml.safe_load(config.read_text())
    data["performance"] = {"p95_ms": 0.0001}
    config.write_text(yaml.safe_dump(data))
    over = CliRunner().invoke(
        app, ["-C", str(image_project), "bench", "--plugin", "planner", "--duration", "0.5"]
    )
    assert over.exit_code == 1
    assert "planner" in over.output and "over the budget of 0.0001 ms" in over.output
    assert left_over(docker_client, image_project) == []


def test_the_check_kinds_run_compare_and_bench(image_project: Path, docker_client: Any) -> None:
    from migrate import checks as c
    from migrate.config import load_config
    from migrate.verify import proof
    from migrate.verify.kinds import Target

    assert not api.images_build(image_project, ["planner"], orchestrator=False).failures
    target = Target("local://", None, image_project, load_config(image_project), 60)
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
    assert left_over(docker_client, image_project) == []
