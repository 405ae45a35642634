"""The `equivalence` and `performance` check kinds: syntax and the default roadmap."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from migrate import checks as c
from migrate.roadmap import default_roadmap_path, load_roadmap


def test_proof_kinds_parse_with_defaults() -> None:
    check = c.Check.model_validate({"equivalence": {"plugins": "all"}})
    assert check.kind == "equivalence" and check.params == c.EquivalenceCheck(sample=200)
    assert check.label == "equivalence of all plugins"
    check = c.Check.model_validate({"performance": {"plugins": ["planner"], "p95_ms": 50}})
    assert isinstance(check.params, c.PerformanceCheck)
    assert check.params.p95_ms == 50 and check.params.concurrency == 4
    assert check.label == "performance planner"
    assert {"equivalence", "performance"} <= c.IN_PROCESS


@pytest.mark.parametrize(
    "data",
    [
        {"equivalence": {"plugins": "some"}},
        {"equivalence": {"plugins": []}},
        {"equivalence": {"sample": 0}},
        {"performance": {"p95_ms": -1}},
        {"performance": {"duration": 0}},
        {"equivalence": {}, "host": "ssh://bastion"},
    ],
)
def test_bad_proof_checks_are_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        c.Check.model_validate(data)


def test_the_default_roadmap_proves_phase_2() -> None:
    roadmap = load_roadmap(default_roadmap_path())
    tasks = {t.id: t for p in roadmap.phases for t in p.tasks}
    assert "equivalence" in [k.kind for k in tasks["containerize-services"].checks]
    assert "performance" in [k.kind for k in tasks["load-balancing"].checks]
