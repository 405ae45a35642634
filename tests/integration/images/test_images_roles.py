"""The orchestrator's image and a plugin's image in its worker role, for real: built by
`migrate images build`, run with host networking against a real Redis and the embedded
PostgreSQL (issue 10, DESIGN 3.9)."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from migrate.cli.app import app
from migrate.inventory import event_graph
from migrate.project import open_context
from tests.integration.images.conftest import (
    DEADLINE,
    BuiltExample,
    http,
    project_name,
    run_image,
    wait_for,
)

pytestmark = pytest.mark.integration

LIBRARIES = ("prometheus_client", "redis", "opentelemetry.sdk", "confluent_kafka")


def build(project: Path, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["-C", str(project), "images", "build", "-o", "json", *args])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text: str = response.read().decode()
        return text


def imports(container: Any, *modules: str) -> None:
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)"
    result = container.exec_run(["python3", "-c", code, *modules])
    assert result.exit_code == 0, result.output.decode(errors="replace")


def uid(container: Any) -> int:
    result = container.exec_run(["python3", "-c", "import os; print(os.getuid())"])
    assert result.exit_code == 0
    return int(result.output)


def test_the_orchestrator_image_and_a_worker_run_a_chain(
    built_example: BuiltExample,
    built_project: Path,
    docker_client: Any,
    redis_url: str,
    container_database_url: str,
) -> None:
    first = built_example.document  # the JSON of `images build` on a new project
    images = {(i["role"], i["plugin"]): i for i in first["images"]}
    assert all(i["built"] for i in images.values()), first
    orchestrator = images[("orchestrator", None)]["image"]
    project = project_name(built_project)
    assert orchestrator.startswith(f"{project}/{project}-orchestrator:")

    # the image: labels, user, health check; tagged by content hash, never :latest
    config = docker_client.images.get(orchestrator).attrs["Config"]
    labels = config["Labels"]
    assert labels["io.migrate.role"] == "orchestrator" and labels["io.migrate.project"] == project
    assert labels["io.migrate.source-hash"].startswith(orchestrator.rsplit(":", 1)[1])
    assert labels["org.opencontainers.image.ref.name"] == orchestrator
    assert "io.migrate.plugin" not in labels
    assert "MIGRATE_ROLE=orchestrator" in config["Env"]
    assert config["User"].split(":")[0] not in ("", "0", "root")
    assert config["Healthcheck"]["Test"][-2:] == ["migrate_runtime", "--check"]
    planner_image = images[("service", "planner")]["image"]
    planner_env = docker_client.images.get(planner_image).attrs["Config"]["Env"]
    assert "MIGRATE_PLUGIN_VERSION=1.4.2" in planner_env  # plugin.yaml's version

    # a no-op rebuild builds nothing, the orchestrator included
    again = build(built_project)
    assert not any(i["built"] for i in again["images"])
    assert {i["image"] for i in again["images"]} == {i["image"] for i in first["images"]}

    ctx = open_context(built_project)
    planner = ctx.inventory.plugin("planner")
    graph = event_graph([planner])  # the planner alone: a run of task.created ends at plan.ready
    bus = {"MIGRATE_BUS": "redis", "REDIS_URL": redis_url}
    orchestrator_container, orchestrator_port = run_image(
        docker_client,
        orchestrator,
        project,
        {
            **bus,
            "DATABASE_URL": container_database_url,
            "MIGRATE_EVENT_GRAPH": json.dumps(graph),
        },
    )
    base = f"http://127.0.0.1:{orchestrator_port}"
    wait_for(orchestrator_container, f"{base}/readyz")  # bus and database reachable
    imports(orchestrator_container, *LIBRARIES, "psycopg")
    assert uid(orchestrator_container) != 0

    worker, worker_port = run_image(
        docker_client,
        planner_image,
        project,
        {
            **bus,
            "MIGRATE_ROLE": "worker",
            "MIGRATE_CONSUMES": ",".join(planner.manifest.events.consumes),
            "MIGRATE_PRODUCES": ",".join(planner.manifest.events.produces),
        },
    )
    wait_for(worker, f"http://127.0.0.1:{worker_port}/readyz")
    imports(worker, *LIBRARIES)
    assert uid(worker) != 0

    status, started = http(
        "POST",
        f"{base}/runs",
        {"event": "task.created", "payload": {"goal": "write code then test it"}},
    )
    assert status == 202 and started["url"] == f"/runs/{started['run']}"
    deadline = time.monotonic() + DEADLINE
    while True:
        status, run = http("GET", f"{base}{started['url']}")
        if run["status"] != "running" or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # poll interval, bounded by the deadline
    assert run["status"] == "done", run
    types = [e["type"] for e in run["events"]]
    assert sorted(types) == ["plan.ready", "task.created"], run
    root = next(e for e in run["events"] if e["type"] == "task.created")
    child = next(e for e in run["events"] if e["type"] == "plan.ready")
    assert child["parent_id"] == root["event_id"] and child["run_id"] == started["run"]
    assert 'migrate_events_produced_total{plugin="planner",type="plan.ready"} 1.0' in metrics(
        worker_port
    )
    assert "# TYPE" in metrics(orchestrator_port)

    for container in (worker, orchestrator_container):
        container.stop(timeout=20)  # SIGTERM drains and exits 0
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 0, container.logs()[-2000:]
