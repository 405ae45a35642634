"""`dev status` reads the bus: consumer lag of a stopped worker, dead letters of a plugin
that raises; a second `dev up` brings a stopped worker back."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from migrate.dev import state
from tests.integration.dev.conftest import run, run_json
from tests.integration.dev.test_dev_lifecycle import up_args
from tests.integration.dev.test_dev_restart import call
from tests.integration.images.conftest import DEADLINE

pytestmark = pytest.mark.integration


def status(project: Path) -> dict[str, Any]:
    return run_json("-C", str(project), "dev", "status")


def wait_run(orchestrator: str, path: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE
    while True:
        code, body = call("GET", f"{orchestrator}{path}")
        assert code == 200, body
        if body["status"] != "running":
            return dict(body)
        assert time.monotonic() < deadline, f"the run did not end: {body}"
        time.sleep(0.2)  # poll interval, bounded by the deadline


def test_lag_of_a_stopped_worker_and_up_brings_it_back(
    dev_project: Path, redis_url: str, database_url: str, docker_client: Any
) -> None:
    args = up_args(dev_project, redis_url, database_url, "--plugin", "planner")
    document = run_json(*args)
    worker = next(c for c in document["containers"] if c["role"] == "worker")
    docker_client.containers.get(worker["name"]).stop(timeout=10)  # a manual stop: stays down

    code, started = call(
        "POST", f"{document['orchestrator']}/runs", {"event": "task.created", "payload": {}}
    )
    assert code == 202, started
    seen = status(dev_project)
    assert seen["workers"] == [
        {"plugin": "planner", "group": "planner-worker", "types": ["task.created"], "lag": 1}
    ]
    stopped = next(c for c in seen["containers"] if c["name"] == worker["name"])
    assert stopped["state"] == "exited" and stopped["ready"] is False

    again = run_json(*args)
    actions = {c["name"]: c["action"] for c in again["containers"]}
    assert actions.pop(worker["name"]) == "replaced"
    assert set(actions.values()) == {"kept"}
    assert wait_run(document["orchestrator"], started["url"])["status"] == "done"
    assert status(dev_project)["workers"][0]["lag"] == 0


def test_dead_letters_of_a_plugin_that_raises(
    dev_project: Path, redis_url: str, database_url: str
) -> None:
    document = run_json(*up_args(dev_project, redis_url, database_url, "--plugin", "planner"))
    # the planner raises on a max_steps that is not a number: retried, then dead-lettered
    code, started = call(
        "POST",
        f"{document['orchestrator']}/runs",
        {"event": "task.created", "payload": {"goal": "x", "max_steps": "many"}},
    )
    assert code == 202, started
    run = wait_run(document["orchestrator"], started["url"])
    assert run["status"] == "failed", run

    seen = status(dev_project)
    assert seen["dead_letters"] == [
        {"type": "task.created", "count": 1, "last_reason": seen["dead_letters"][0]["last_reason"]}
    ]
    assert "ValueError" in seen["dead_letters"][0]["last_reason"]
    assert seen["workers"][0]["lag"] == 0


def test_a_container_that_never_gets_ready_is_named_with_its_log(
    dev_project: Path, redis_url: str, database_url: str
) -> None:
    planner = dev_project.parent / "agents-app" / "plugins" / "planner" / "planner.py"
    planner.write_text(planner.read_text() + '\nraise RuntimeError("planner broken on purpose")\n')
    args = up_args(dev_project, redis_url, database_url, "--plugin", "planner", "--timeout", "30")
    result = run(*args)
    assert result.exit_code == 1, result.output
    message = result.stderr
    assert "-dev-worker-planner (worker of planner)" in message or (
        "-dev-service-planner (service of planner)" in message
    )
    assert "planner broken on purpose" in message  # the tail of its log
    assert "docker logs" in message
    saved = state.load(dev_project)  # what was started is recorded, not ready
    assert saved is not None
    assert any(c["plugin"] == "planner" and c["ready"] is False for c in saved["containers"])
