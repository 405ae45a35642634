"""A crashed worker comes back (restart policy on-failure) and the run completes."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.dev.conftest import run_json
from tests.integration.dev.test_dev_lifecycle import up_args
from tests.integration.images.conftest import DEADLINE

pytestmark = pytest.mark.integration


def call(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode(errors="replace")


def ready(url: str) -> bool:
    try:
        return call("GET", f"{url}/readyz")[0] == 200
    except OSError:
        return False


def test_a_worker_killed_with_sigkill_comes_back_and_the_run_completes(
    dev_project: Path, redis_url: str, database_url: str, docker_client: Any
) -> None:
    document = run_json(*up_args(dev_project, redis_url, database_url, "--plugin", "planner"))
    assert all(c["ready"] for c in document["containers"])
    worker = next(c for c in document["containers"] if c["role"] == "worker")
    container = docker_client.containers.get(worker["name"])
    assert container.attrs["RestartCount"] == 0

    # kill -9 of its main process, from outside (a crash: not `docker kill`, which the
    # engine takes as a manual stop and does not restart after)
    os.kill(container.attrs["State"]["Pid"], signal.SIGKILL)
    # a run started while the worker is down: its event waits on the bus
    status, started = call(
        "POST",
        f"{document['orchestrator']}/runs",
        {"event": "task.created", "payload": {"goal": "plan it; then do it"}},
    )
    assert status == 202, started

    deadline = time.monotonic() + DEADLINE
    while True:
        container.reload()
        back = container.attrs["RestartCount"] >= 1 and container.status == "running"
        if back and ready(worker["url"]):
            break
        assert time.monotonic() < deadline, (
            f"{worker['name']} did not come back: {container.status}, "
            f"restarts {container.attrs['RestartCount']}\n{container.logs(tail=30).decode()}"
        )
        time.sleep(0.2)  # poll interval, bounded by the deadline

    while True:
        status, body = call("GET", f"{document['orchestrator']}{started['url']}")
        assert status == 200, body
        if body["status"] != "running":
            break
        assert time.monotonic() < deadline, f"the run did not end: {body}"
        time.sleep(0.2)  # poll interval, bounded by the deadline
    assert body["status"] == "done", body
    types = [event["type"] for event in body["events"]]
    assert sorted(types) == ["plan.ready", "task.created"]
