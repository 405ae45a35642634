"""What the plan-speed tests (issue 14) share: each test's own cache, no Docker engine,
and a plan's whole outcome to compare with a plan made with no cache at all.

A test module takes the autouse fixture `cache_dir` by importing `cache_dir_fixture`
(registered under the name `cache_dir`, so a test's `cache_dir` argument does not shadow
the import). It is function-scoped: the copy pytest makes in each importing module keeps
nothing between tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migrate import api
from tests.unit.engine_standin import use_engine


@pytest.fixture(autouse=True, name="cache_dir")
def cache_dir_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`plan`'s cache in this test's own directory (not there yet), the cache on, and
    DOCKER_HOST at a socket nothing listens on (no engine, no TLS)."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("MIGRATE_CACHE_DIR", str(directory))
    monkeypatch.delenv("MIGRATE_NO_CACHE", raising=False)
    use_engine(monkeypatch, f"unix://{tmp_path / 'no-engine.sock'}")  # no engine
    return directory


def outcome(project: Path) -> str:
    """Everything a plan says, with each change's data (the rendered records)."""
    plan = api.plan(project)
    document = plan.to_dict()
    document["data"] = [[c.resource, c.data, c.detail] for c in plan.changes]
    return json.dumps(document, sort_keys=True, default=str)


def uncached(project: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """`outcome` of a plan made with no cache at all (MIGRATE_NO_CACHE=1)."""
    with monkeypatch.context() as patch:
        patch.setenv("MIGRATE_NO_CACHE", "1")
        return outcome(project)
