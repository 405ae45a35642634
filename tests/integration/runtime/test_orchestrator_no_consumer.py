"""An orchestrator whose event graph names no plugin that consumes an event (an
application with data/ and no plugins/: MIGRATE_EVENT_GRAPH='{}'), as a real process on
127.0.0.1 against the real redis-server and PostgreSQL: it starts, becomes ready, and
refuses every run with a 422 that names the event, never a run left "running"."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import write
from tests.integration.runtime.harness import LocalSystem, http

pytestmark = pytest.mark.integration

PRODUCER_ONLY = {"exporter": {"consumes": [], "produces": ["report.ready"]}}


@pytest.fixture
def data_only(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    write(app / "data" / "users" / "users.jsonl", '{"id": 1}\n')
    return app


@pytest.fixture
def system(
    data_only: Path, redis_url: str, database_url: str, tmp_path: Path
) -> Iterator[LocalSystem]:
    local = LocalSystem(data_only, redis_url, database_url, tmp_path / "logs")
    with local:
        yield local


@pytest.mark.parametrize("graph", [None, PRODUCER_ONLY], ids=["data-only", "producer-only"])
def test_an_orchestrator_no_plugin_feeds_is_ready_and_refuses_every_run(
    system: LocalSystem, graph: dict[str, dict[str, list[str]]] | None
) -> None:
    assert not system.inventory.plugins
    orchestrator = system.add_orchestrator()
    # what the renderer and `migrate dev up` give a data-only project: the empty graph
    assert orchestrator.env["MIGRATE_EVENT_GRAPH"] == "{}"
    if graph is not None:
        orchestrator.env["MIGRATE_EVENT_GRAPH"] = json.dumps(graph)
    system.start()  # waits for /readyz: the bus and the run store answer

    status, body = http("GET", orchestrator.url + "/readyz")
    assert status == 200, body
    status, body = http(
        "POST", orchestrator.url + "/runs", {"event": "task.created", "payload": {"goal": "x"}}
    )
    assert status == 422, body
    assert "no plugin consumes 'task.created'" in body["error"], body
    assert "MIGRATE_EVENT_GRAPH" in body["error"] and body["accepted"] == [], body
    assert "run" not in body  # no run was started, so none can be left running

    # still serving and ready after the refusal; the start said why it will refuse
    assert http("GET", orchestrator.url + "/readyz")[0] == 200
    lines = [json.loads(line) for line in orchestrator.log.read_text().splitlines() if line]
    [graph_line] = [line for line in lines if line["message"].startswith("event graph")]
    assert graph_line["level"] == "warning" and graph_line["accepted"] == [], graph_line
    assert "refused" in graph_line["message"]
