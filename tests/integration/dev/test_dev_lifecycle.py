"""`migrate dev up | status | down` on the example app, for real."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from migrate.dev import state
from migrate.inventory import scan
from tests.conftest import EXAMPLE_APP
from tests.integration.dev.conftest import dev_containers, run, run_json
from tests.integration.images.conftest import project_name

pytestmark = pytest.mark.integration

PASSWORD = "dev-secret-7f3a"
PLUGINS = scan(EXAMPLE_APP).plugins
EXPECTED = {("orchestrator", None)} | {
    (role, p.name) for p in PLUGINS for role in ("worker", "service")
}


def up_args(project: Path, redis_url: str, database_url: str, *extra: str) -> list[str]:
    return [
        "-C",
        str(project),
        "dev",
        "up",
        "--network",
        "host",
        "--bus-url",
        redis_url,
        "--database-url",
        database_url,
        *extra,
    ]


def get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:
        return int(response.status)


def test_up_again_status_down(
    dev_project: Path, redis_url: str, database_url: str, docker_client: Any
) -> None:
    name = project_name(dev_project)
    # the embedded server trusts local connections: the password is only there to be hidden
    database_url = f"{database_url} password={PASSWORD}"

    first = run(*up_args(dev_project, redis_url, database_url), "--output", "json")
    assert first.exit_code == 0, first.output
    assert PASSWORD not in first.output
    document = json.loads(first.stdout)
    assert set(document) == {
        "version",
        "project",
        "network",
        "orchestrator",
        "containers",
        "removed",
    }
    assert document["version"] == 1 and document["project"] == name
    assert document["network"] == "host" and document["removed"] == []
    containers = document["containers"]
    assert {(c["role"], c["plugin"]) for c in containers} == EXPECTED
    assert len(containers) == len(EXPECTED)
    for c in containers:
        assert set(c) == {"name", "role", "plugin", "url", "ready", "image", "action"}
        assert c["ready"] is True and c["action"] == "created"
        assert c["url"].startswith("http://127.0.0.1:")
        assert c["name"].startswith(f"{name}-dev-{c['role']}")
        assert get(c["url"] + "/healthz") == 200
    orchestrator = next(c for c in containers if c["role"] == "orchestrator")
    assert document["orchestrator"] == orchestrator["url"]
    assert len({c["url"] for c in containers}) == len(containers)  # a port each

    engine_view = {c.name: c for c in dev_containers(docker_client, name)}
    assert set(engine_view) == {c["name"] for c in containers}
    for container in engine_view.values():
        assert container.status == "running"
        assert container.attrs["HostConfig"]["NetworkMode"] == "host"
        assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "on-failure"
        assert container.labels["io.migrate.project"] == name
    saved = state.load(dev_project)
    assert saved is not None
    assert saved["orchestrator"] == document["orchestrator"]
    assert saved["containers"] == [
        {k: c[k] for k in ("name", "role", "plugin", "url", "ready")} for c in containers
    ]
    assert PASSWORD not in state.path(dev_project).read_text()

    # a second up changes nothing
    again = run_json(*up_args(dev_project, redis_url, database_url))
    assert {c["action"] for c in again["containers"]} == {"kept"}
    assert [(c["name"], c["url"]) for c in again["containers"]] == [
        (c["name"], c["url"]) for c in containers
    ]
    assert {c.name: c.id for c in dev_containers(docker_client, name)} == {
        n: c.id for n, c in engine_view.items()
    }

    table = run("-C", str(dev_project), "dev", "status")
    assert table.exit_code == 0 and PASSWORD not in table.output
    assert "orchestrator" in table.stdout and "planner-worker" in table.stdout
    status = run_json("-C", str(dev_project), "dev", "status")
    assert set(status) >= {"version", "containers", "workers", "dead_letters"}
    assert status["version"] == 1
    assert {(c["role"], c["plugin"]) for c in status["containers"]} == EXPECTED
    for c in status["containers"]:
        assert c["state"] == "running" and c["ready"] is True and c["restarts"] == 0
    consumers = {p.name for p in PLUGINS if p.manifest.events.consumes}
    assert {w["plugin"] for w in status["workers"]} == consumers
    for w in status["workers"]:
        assert w["lag"] == 0 and w["group"] == f"{w['plugin']}-worker"
    consumed = {t for p in PLUGINS for t in p.manifest.events.consumes}
    assert {d["type"] for d in status["dead_letters"]} == consumed
    assert all(d["count"] == 0 and d["last_reason"] is None for d in status["dead_letters"])
    assert status["bus_error"] is None

    down = run_json("-C", str(dev_project), "dev", "down")
    assert sorted(down["removed"]) == sorted(engine_view)
    assert down["state_file_removed"] is True
    assert dev_containers(docker_client, name) == []
    assert state.load(dev_project) is None

    again_down = run_json("-C", str(dev_project), "dev", "down")
    assert again_down["removed"] == [] and again_down["state_file_removed"] is False
    empty = run("-C", str(dev_project), "dev", "status")
    assert empty.exit_code == 0 and "No dev containers" in empty.stdout
