"""`migrate dev` without a Docker engine: clear errors; the state file; the JSON shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migrate.dev import state
from migrate.dev.verbs import (
    ContainerStatus,
    DeadLetters,
    Started,
    StatusResult,
    UpResult,
    WorkerLag,
)
from tests.unit.cli_without_engine import NO_ENGINE, no_engine_fixture, run  # noqa: F401  (fixture)


@pytest.mark.parametrize(
    "args", [["up", "--bus-url", "redis://127.0.0.1:1/0"], ["status"], ["down"]]
)
def test_no_engine_says_how_to_set_docker_host(
    project: Path, no_engine: None, args: list[str]
) -> None:
    result = run("-C", str(project), "dev", *args)
    assert result.exit_code == 1
    assert f"no Docker engine answers at {NO_ENGINE}" in result.stderr
    assert "DOCKER_HOST" in result.stderr
    assert "Traceback" not in result.output


def test_no_engine_in_json_mode(project: Path, no_engine: None) -> None:
    result = run("-C", str(project), "dev", "status", "--output", "json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["version"] == 1 and "no Docker engine" in document["error"]


def test_unknown_plugin(project: Path, no_engine: None) -> None:
    result = run("-C", str(project), "dev", "up", "--plugin", "nope")
    assert result.exit_code == 1
    assert "no plugin 'nope'" in result.stderr and "planner" in result.stderr


def test_bus_url_that_is_not_redis(project: Path, no_engine: None) -> None:
    result = run("-C", str(project), "dev", "up", "--bus-url", "http://u:hunter2@x:1")
    assert result.exit_code == 1
    assert "needs a redis:// or rediss:// URL" in result.stderr
    assert "hunter2" not in result.output


def test_database_socket_that_does_not_exist(project: Path, no_engine: None) -> None:
    url = "postgresql://postgres:pw@/postgres?host=/nonexistent/pg"
    result = run("-C", str(project), "dev", "up", "--database-url", url)
    assert result.exit_code == 1
    assert "no PostgreSQL socket /nonexistent/pg/.s.PGSQL.5432" in result.stderr


def test_bad_network(project: Path) -> None:
    result = run("-C", str(project), "dev", "up", "--network", "overlay")
    assert result.exit_code == 2  # a usage error, from the parser


def test_help_lists_the_verbs() -> None:
    result = run("dev", "--help")
    assert result.exit_code == 0
    for verb in ("up", "status", "down"):
        assert verb in result.stdout


def test_state_file_roundtrip(tmp_path: Path) -> None:
    assert state.load(tmp_path) is None
    document = {"version": 1, "project": "p", "orchestrator": "http://127.0.0.1:1"}
    written = state.save(tmp_path, document)
    assert written == tmp_path / ".migrate" / "dev.json"
    assert state.load(tmp_path) == document
    assert state.remove(tmp_path) is True
    assert state.remove(tmp_path) is False
    assert state.load(tmp_path) is None


def test_state_file_unreadable_or_other_version(tmp_path: Path) -> None:
    path = state.path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert state.load(tmp_path) is None
    path.write_text(json.dumps({"version": 2}))
    assert state.load(tmp_path) is None


def test_up_document_and_state_shapes() -> None:
    result = UpResult(
        "demo",
        "host",
        "http://127.0.0.1:40001",
        [
            Started("demo-dev-orchestrator", "orchestrator", None, "http://127.0.0.1:40001",
                    True, "demo/orchestrator:1", "created"),
            Started("demo-dev-worker-planner", "worker", "planner", "http://127.0.0.1:40002",
                    True, "demo/planner:1", "kept"),
        ],
    )  # fmt: skip
    document = result.to_dict()
    assert list(document) == ["version", "project", "network", "orchestrator", "containers",
                              "removed"]  # fmt: skip
    assert document["containers"][0] == {
        "name": "demo-dev-orchestrator",
        "role": "orchestrator",
        "plugin": None,
        "url": "http://127.0.0.1:40001",
        "ready": True,
        "image": "demo/orchestrator:1",
        "action": "created",
    }
    saved = result.state()
    assert saved == {
        "version": 1,
        "project": "demo",
        "network": "host",
        "orchestrator": "http://127.0.0.1:40001",
        "containers": [
            {"name": "demo-dev-orchestrator", "role": "orchestrator", "plugin": None,
             "url": "http://127.0.0.1:40001", "ready": True},
            {"name": "demo-dev-worker-planner", "role": "worker", "plugin": "planner",
             "url": "http://127.0.0.1:40002", "ready": True},
        ],
    }  # fmt: skip


def test_status_document_shape() -> None:
    result = StatusResult(
        "demo",
        [ContainerStatus("c", "worker", "planner", "http://127.0.0.1:1", "running", 2, True, "ok")],
        [WorkerLag("planner", "planner-worker", ["task.created"], 3)],
        [DeadLetters("task.created", 1, "boom")],
        "redis://127.0.0.1:6390/0",
    )
    document = result.to_dict()
    assert document["version"] == 1
    assert document["containers"][0]["restarts"] == 2
    assert document["workers"] == [
        {"plugin": "planner", "group": "planner-worker", "types": ["task.created"], "lag": 3}
    ]
    assert document["dead_letters"] == [{"type": "task.created", "count": 1, "last_reason": "boom"}]
