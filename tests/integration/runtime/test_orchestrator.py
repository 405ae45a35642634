"""The orchestrator with the example app's six real workers, as real processes on
127.0.0.1 against the real redis-server and PostgreSQL (DESIGN 3.9, issue 10)."""

from __future__ import annotations

import http.client
import json
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write
from tests.integration.data.conftest import query
from tests.integration.runtime.test_host_roles import (
    DEADLINE,
    PLUGINS,
    Runtime,
    entries,
    graph_of,
    metric,
    orchestrator_env,
    plugin_env,
    poll,
    publish,
    raw_request,
    started_runtimes,
    unread,
)

pytestmark = pytest.mark.integration

NAMES = ["planner", "code_reviewer", "web_researcher", "Report-Writer", "summarizer", "notifier"]
EXPECTED = Counter(  # what one task.created run produces through the example app's graph
    {
        "task.created": 1,
        "plan.ready": 1,
        "review.done": 1,
        "research.done": 1,
        "report.ready": 2,
        "summary.ready": 2,
        "notification.sent": 4,
    }
)
TASK = {"goal": "write the code. review it. then ship it", "query": "kubernetes pods"}
RUN_DEADLINE = 90.0  # seconds for a whole run through seven processes on two cores


@pytest.fixture
def runtimes() -> Iterator[Callable[..., Runtime]]:
    with started_runtimes() as start:
        yield start


@pytest.fixture
def start_worker(runtimes: Callable[..., Runtime], redis_url: str) -> Callable[..., Runtime]:
    def start(name: str, *, plugins: Path = PLUGINS, **extra: str) -> Runtime:
        # the summarizer's python-slugify is a dev dependency (pyproject), as in its image
        return runtimes(plugin_env(name, redis_url, plugins=plugins, **extra), name=name)

    return start


@pytest.fixture
def start_orchestrator(
    runtimes: Callable[..., Runtime], redis_url: str, database_url: str
) -> Callable[..., Runtime]:
    def start(graph: str | None = None) -> Runtime:
        env = orchestrator_env(redis_url, database_url, graph or graph_of(PLUGINS))
        orchestrator = runtimes(env, name="orchestrator")
        orchestrator.wait_for("run store ready")
        return orchestrator

    return start


def start_run(orchestrator: Runtime, event: str, payload: dict[str, Any]) -> str:
    status, body = orchestrator.post("/runs", {"event": event, "payload": payload})
    assert status == 202, body
    assert body["url"] == f"/runs/{body['run']}"
    run: str = body["run"]
    return run


def finished(orchestrator: Runtime, run: str, timeout: float = RUN_DEADLINE) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        status, body = orchestrator.get(f"/runs/{run}")
        assert status == 200, body
        return body if body["status"] != "running" else None

    document: dict[str, Any] = poll(f"run {run} to finish", probe, timeout)
    return document


def check_lineage(document: dict[str, Any]) -> None:
    """Every event of the run names its run, its source and a parent of the run.

    (Events are listed in the order their notices arrived; a consumer quicker than
    the producer's own notice may, rarely, put a child before its parent.)"""
    by_id = {e["event_id"]: e for e in document["events"]}
    assert len(by_id) == len(document["events"])  # no duplicates
    consumes = {p: set(e["consumes"]) for p, e in json.loads(graph_of(PLUGINS)).items()}
    for event in document["events"]:
        assert "payload" not in event
        assert event["run_id"] == document["run"]
        if event["parent_id"] is None:
            assert event["event_id"] == document["run"] and event["source"] == "orchestrator"
        else:
            parent = by_id.get(event["parent_id"])
            assert parent is not None, f"{event['type']}: parent not in the run"
            assert parent["type"] in consumes[event["source"]], (parent, event)
    assert document["events"][0]["event_id"] == document["run"]  # the root comes first
    producers = {e["type"]: e["source"] for e in document["events"] if e["parent_id"]}
    assert producers == {
        "plan.ready": "planner",
        "review.done": "code_reviewer",
        "research.done": "web_researcher",
        "report.ready": "Report-Writer",
        "summary.ready": "summarizer",
        "notification.sent": "notifier",
    }


def stream(
    orchestrator: Runtime, run: str, last_id: int | None = None
) -> list[tuple[str, str, Any]]:
    """Read `GET /runs/RUN/events` to its end: [(id, event, data)]."""
    connection = http.client.HTTPConnection("127.0.0.1", orchestrator.port, timeout=DEADLINE)
    headers = {"Last-Event-ID": str(last_id)} if last_id is not None else {}
    try:
        connection.request("GET", f"/runs/{run}/events", headers=headers)
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type", "").startswith("text/event-stream")
        messages: list[tuple[str, str, Any]] = []
        fields: dict[str, str] = {}
        while True:
            line = response.fp.readline()
            if not line:
                break  # the server ended the stream
            text = line.decode().rstrip("\n")
            if text.startswith(":"):
                continue
            if text:
                name, _, value = text.partition(": ")
                fields[name] = value
                continue
            if fields:
                messages.append((fields.get("id", ""), fields["event"], json.loads(fields["data"])))
                fields = {}
        return messages
    finally:
        connection.close()


# -- the whole chain ---------------------------------------------------------------------------


def test_a_task_created_run_reaches_done_through_six_workers(
    start_orchestrator: Callable[..., Runtime],
    start_worker: Callable[..., Runtime],
    redis_url: str,
    database_url: str,
) -> None:
    orchestrator = start_orchestrator()
    workers = [start_worker(name) for name in NAMES]
    run = start_run(orchestrator, "task.created", TASK)
    live = stream(orchestrator, run)  # from the start: events arrive while it waits

    document = finished(orchestrator, run)
    assert document["status"] == "done" and document["error"] is None, document
    assert Counter(e["type"] for e in document["events"]) == EXPECTED
    check_lineage(document)

    # the stream delivered the same events in the same order, then the end
    assert live[-1] == ("", "end", {"status": "done", "error": None})
    assert [(m[1], m[2]) for m in live[:-1]] == [(e["type"], e) for e in document["events"]]
    ids = [int(m[0]) for m in live[:-1]]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # resuming after an id gives the rest only
    resumed = stream(orchestrator, run, last_id=ids[3])
    assert [m[0] for m in resumed[:-1]] == [str(i) for i in ids[4:]]

    # the metrics agree with the events seen
    _, _, text = orchestrator.request("GET", "/metrics")
    assert metric(text, "migrate_runs_total", status="started") == 1.0
    assert metric(text, "migrate_runs_total", status="done") == 1.0
    produced = Counter(e["type"] for e in document["events"] if e["parent_id"])
    for worker in workers:
        plugin = worker.env["MIGRATE_PLUGIN"]
        _, _, text = worker.request("GET", "/metrics")
        for type in worker.env["MIGRATE_PRODUCES"].split(","):
            value = metric(text, "migrate_events_produced_total", plugin=plugin, type=type)
            assert value == produced[type], (plugin, type, value)
    assert unread(redis_url, "events.migrate.settled", "orchestrator") == 0

    # the run tables say who made them
    comments = query(
        database_url,
        "SELECT c.relname, obj_description(c.oid) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'runtime_test' AND c.relkind = 'r' ORDER BY 1",
    )
    assert [name for name, _ in comments] == [
        "migrate_run_events",
        "migrate_run_expectations",
        "migrate_runs",
    ]
    assert all("migrate runtime" in comment for _, comment in comments)


def test_a_restarted_orchestrator_loses_nothing(
    start_orchestrator: Callable[..., Runtime],
    start_worker: Callable[..., Runtime],
    redis_url: str,
    database_url: str,
) -> None:
    orchestrator = start_orchestrator()
    start_worker("planner")
    run = start_run(orchestrator, "task.created", TASK)

    def recorded(orchestrator: Runtime, *types: str) -> Callable[[], bool]:
        def probe() -> bool:
            events = orchestrator.get(f"/runs/{run}")[1]["events"]
            return set(types) <= {e["type"] for e in events}

        return probe

    poll("plan.ready to be recorded", recorded(orchestrator, "plan.ready"))
    orchestrator.process.send_signal(signal.SIGKILL)  # a crash, mid-run
    assert orchestrator.process.wait(timeout=DEADLINE) == -signal.SIGKILL
    # part of the chain runs while no orchestrator listens: its notices wait on the bus
    start_worker("code_reviewer")
    start_worker("web_researcher")
    poll("review.done", lambda: entries(redis_url, "events.review.done"))
    poll("research.done", lambda: entries(redis_url, "events.research.done"))

    again = start_orchestrator()
    poll("the waiting notices", recorded(again, "review.done", "research.done"))
    # the database drops every connection (as a restart would): the orchestrator reconnects
    killed = query(
        database_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'migrate-orchestrator'",
    )
    assert killed and all(ok for (ok,) in killed)
    for name in NAMES[3:]:
        start_worker(name)
    document = finished(again, run)
    assert document["status"] == "done", document
    assert Counter(e["type"] for e in document["events"]) == EXPECTED
    check_lineage(document)
    again.wait_for("the database connection broke: connecting again")
    ended = stream(again, run)
    assert ended[-1] == ("", "end", {"status": "done", "error": None})
    assert len(ended) == sum(EXPECTED.values()) + 1


def test_a_root_event_lost_before_publication_is_published_at_start(
    start_orchestrator: Callable[..., Runtime],
    start_worker: Callable[..., Runtime],
    redis_url: str,
) -> None:
    """A run recorded while the bus was away is published when the orchestrator restarts."""
    orchestrator = start_orchestrator()
    run = start_run(orchestrator, "task.created", TASK)
    assert orchestrator.signal(signal.SIGTERM) == 0
    # as if the publication had been lost: the root never reached the bus
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    assert client.delete("events.task.created") == 1
    client.close()
    again = start_orchestrator()
    again.wait_for("published root events again")
    assert [e["event_id"] for e in entries(redis_url, "events.task.created")] == [run]
    for name in NAMES:
        start_worker(name)
    document = finished(again, run)
    assert document["status"] == "done"
    assert Counter(e["type"] for e in document["events"]) == EXPECTED


# -- failures ------------------------------------------------------------------------------------


def test_a_plugin_that_raises_fails_the_run_with_its_error(
    start_orchestrator: Callable[..., Runtime],
    start_worker: Callable[..., Runtime],
    redis_url: str,
    tmp_path: Path,
) -> None:
    plugins = tmp_path / "plugins"
    write(
        plugins / "boom" / "plugin.yaml",
        """
        name: boom
        version: "0.1.0"
        events:
          consumes: [plan.ready]
          produces: [boom.done]
        """,
    )
    write(
        plugins / "boom" / "plugin.py",
        """
        def handle(payload):
            raise ValueError(f"cannot handle {payload['step_count']} steps")
        """,
    )
    graph = json.loads(graph_of(PLUGINS, ["planner"]))
    graph["boom"] = {"consumes": ["plan.ready"], "produces": ["boom.done"]}
    orchestrator = start_orchestrator(json.dumps(graph))
    start_worker("planner")
    failing = start_worker("boom", plugins=plugins, MIGRATE_MAX_ATTEMPTS="3")
    run = start_run(orchestrator, "task.created", {"goal": "one. two"})
    document = finished(orchestrator, run)
    assert document["status"] == "failed", document
    error = document["error"]
    assert "boom" in error and "plan.ready" in error, error
    assert "ValueError: cannot handle 2 steps" in error and "3 attempts" in error, error
    assert [e["type"] for e in document["events"]] == ["task.created", "plan.ready"]
    end = stream(orchestrator, run)[-1]
    assert end == ("", "end", {"status": "failed", "error": error})
    _, _, text = orchestrator.request("GET", "/metrics")
    assert metric(text, "migrate_runs_total", status="failed") == 1.0
    assert failing.process.poll() is None


# -- bad input --------------------------------------------------------------------------------


def test_bad_run_requests_get_json_4xx(
    start_orchestrator: Callable[..., Runtime], redis_url: str
) -> None:
    orchestrator = start_orchestrator()
    status, body = orchestrator.post("/runs", {"event": "no.such", "payload": {}})
    assert status == 422 and "no.such" in body["error"]
    assert body["accepted"] == [
        "plan.ready",
        "report.ready",
        "research.done",
        "review.done",
        "summary.ready",
        "task.created",
    ]
    for raw, message in (
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b"", "not JSON"),
        (b'{"payload": {}}', '"event"'),
        (b'{"event": 7}', '"event"'),
        (b'{"event": "task.created", "payload": [1]}', '"payload"'),
    ):
        status, _, body = orchestrator.request("POST", "/runs", raw)
        assert status == 400 and message in body["error"], (raw, body)
    oversized = b"POST /runs HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n"
    status, headers, body = raw_request(orchestrator.port, oversized)  # the body is never sent
    assert status == 413 and "larger" in body["error"]
    status, headers, body = orchestrator.request("GET", "/runs")
    assert status == 405 and headers["allow"] == "POST"
    assert orchestrator.get("/runs/nope") == (404, {"error": "no run nope"})
    assert orchestrator.get("/runs/nope/events") == (404, {"error": "no run nope"})
    assert orchestrator.get("/runs/a/b/c")[0] == 404

    # a malformed settled notice is logged and acked; the orchestrator goes on
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    client.xadd("events.migrate.settled", {"event": b"{not a notice"})
    client.xadd("events.migrate.settled", {"event": json.dumps({"event_id": "x"}).encode()})
    client.close()
    orchestrator.wait_for("malformed settled notice: dropped")
    poll(
        "the notices acked",
        lambda: unread(redis_url, "events.migrate.settled", "orchestrator") == 0,
    )
    assert orchestrator.get("/healthz") == (200, {"status": "ok"})
    assert not [line for line in orchestrator.lines if line["level"] == "error"]


def test_notices_of_unknown_runs_are_ignored(
    start_orchestrator: Callable[..., Runtime], start_worker: Callable[..., Runtime], redis_url: str
) -> None:
    """Events that no run started (published by someone else) are handled by the
    workers; the orchestrator records nothing for them."""
    orchestrator = start_orchestrator()
    start_worker("planner")
    event = publish(redis_url, "task.created", {"goal": "x"})
    poll("plan.ready", lambda: entries(redis_url, "events.plan.ready"))
    poll(
        "the notice acked", lambda: unread(redis_url, "events.migrate.settled", "orchestrator") == 0
    )
    assert orchestrator.get(f"/runs/{event['run_id']}")[0] == 404
