"""The migrated example app runs, for real (issue 10's acceptance list).

`migrate images build` builds the six plugin images and the orchestrator image
from the test base image; `migrate dev up --network host` starts them as 13
containers against the real redis-server (`--bus-url`) and the embedded
PostgreSQL (`--database-url`). Then runs go through the whole chain, and faults
are injected: a worker's main process killed with SIGKILL mid-run (a crash:
the engine restarts it by its policy), the orchestrator killed the same way,
a plugin that raises for a payload, a malformed message on the bus, bad
requests. Every run is compared with the legacy handlers called in-process
along the same event graph (`migrate.legacy.Chain`).

One environment serves the whole module (it takes about a minute to build and
start on two cores); each test reads counters as deltas, so their order does
not matter.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from migrate import inventory, legacy
from tests.conftest import EXAMPLE_APP
from tests.integration.data.conftest import pg_server  # noqa: F401  (fixture)
from tests.integration.dev.conftest import remove_dev, run_json
from tests.integration.images.conftest import (  # noqa: F401  (fixtures)
    BuiltExample,
    built_example,
    docker_client,
    remove_all_but_shared,
    set_source,
    wheelhouse,
)
from tests.integration.runtime.conftest import redis_server  # noqa: F401  (fixture)
from tests.integration.runtime.harness import http
from tests.integration.runtime.test_host_roles import raw_request

pytestmark = pytest.mark.integration

DEADLINE = 120.0  # seconds: a bound on waiting for runs on two cores, never a measurement
TASK = {
    "goal": "Read the spec; write the code and then test it",
    "code": "def f():\n\tprint('x')  # TODO\n",
    "query": "python json kubernetes",
}
SIX = {"plan.ready", "review.done", "research.done", "report.ready", "summary.ready"}
SIX |= {"notification.sent"}


def expected(payload: dict[str, Any]) -> Counter[str]:
    """What the legacy application produces for one run, by event type."""
    chain = legacy.Chain(inventory.scan(EXAMPLE_APP).plugins)
    return Counter(event.type for event in chain.run("task.created", payload))


@pytest.fixture(scope="module")
def system(
    tmp_path_factory: pytest.TempPathFactory,
    docker_client: Any,  # noqa: F811
    built_example: BuiltExample,  # noqa: F811
    redis_server: str,  # noqa: F811
    pg_server: str,  # noqa: F811
) -> Iterator[dict[str, Any]]:
    import psycopg
    import redis
    from psycopg import conninfo, sql

    # a copy of the session's built example project: its images are in the engine
    root = tmp_path_factory.mktemp("e2e") / "built"
    shutil.copytree(built_example.root, root, symlinks=True)
    project = root / "project"
    name = built_example.name
    set_source(project, root / "agents-app")

    base = redis.Redis.from_url(redis_server)
    index = 1 + int(base.incr("migrate-tests:next-db")) % 1023
    base.close()
    redis_url = redis_server.rsplit("/", 1)[0] + f"/{index}"
    bus = redis.Redis.from_url(redis_url)
    bus.flushdb()
    database = f"e2e_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    database_url = conninfo.make_conninfo(pg_server, dbname=database)
    try:
        built = built_example.document  # the JSON of `images build` on the new project
        roles = Counter(image["role"] for image in built["images"])
        assert roles == {"service": 6, "orchestrator": 1}, built
        up = run_json(
            "-C", str(project), "dev", "up", "--network", "host",
            "--bus-url", redis_url, "--database-url", database_url,
        )  # fmt: skip
        assert all(c["ready"] for c in up["containers"]), up["containers"]
        # the manifests' images are exactly what was built (no :latest anywhere)
        images = {c["image"] for c in up.get("containers", []) if c.get("image")}
        assert images <= {image["image"] for image in built["images"]}, (images, built)
        yield {
            "project": project,
            "name": name,
            "up": up,
            "orchestrator": up["orchestrator"],
            "redis": bus,
            "docker": docker_client,
        }
    finally:
        remove_dev(docker_client, name)
        remove_all_but_shared(docker_client, built_example)
        bus.flushdb()
        bus.close()
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(database)))


def submit(system: dict[str, Any], payload: dict[str, Any], event: str = "task.created") -> str:
    status, body = http(
        "POST", f"{system['orchestrator']}/runs", {"event": event, "payload": payload}
    )
    assert status == 202, body
    return str(body["run"])


def wait(system: dict[str, Any], run: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE
    while True:
        status, body = http("GET", f"{system['orchestrator']}/runs/{run}")
        if status == 200 and body["status"] != "running":
            return dict(body)
        assert time.monotonic() < deadline, f"run {run} did not end: {status} {body}"
        time.sleep(0.05)  # poll interval, bounded by the deadline


def container(system: dict[str, Any], role: str, plugin: str | None = None) -> dict[str, Any]:
    return next(
        c for c in system["up"]["containers"] if c["role"] == role and c["plugin"] == plugin
    )


def counters(system: dict[str, Any], name: str) -> Counter[str]:
    """`name` summed over every worker's /metrics, by event type."""
    from prometheus_client.parser import text_string_to_metric_families

    total: Counter[str] = Counter()
    for c in system["up"]["containers"]:
        if c["role"] != "worker":
            continue
        status, text = http("GET", c["url"] + "/metrics")
        assert status == 200
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name:
                    total[sample.labels["type"]] += int(sample.value)
    return total


def main_pid(system: dict[str, Any], name: str) -> tuple[Any, int, int]:
    handle = system["docker"].containers.get(name)
    return handle, int(handle.attrs["State"]["Pid"]), int(handle.attrs["RestartCount"])


def backlog(system: dict[str, Any], stream: str, group: str) -> int:
    """Entries of `stream` that `group` has not acked (read or not)."""
    for info in system["redis"].xinfo_groups(stream):
        if info["name"].decode() == group:
            return int(info["lag"] or 0) + int(info["pending"])
    return 0


def until(what: str, probe: Any) -> None:
    deadline = time.monotonic() + DEADLINE
    while not probe():
        assert time.monotonic() < deadline, f"not within {DEADLINE} s: {what}"
        time.sleep(0.05)  # poll interval, bounded by the deadline


def back(handle: Any, restarts: int, url: str) -> None:
    """The engine restarted the container by its policy and it is ready again."""

    def ready() -> bool:
        handle.reload()
        if handle.attrs["RestartCount"] <= restarts or handle.status != "running":
            return False
        try:
            return http("GET", url + "/readyz", timeout=2)[0] == 200
        except OSError:
            return False

    until(f"{handle.name} restarted and ready", ready)


def check_run(result: dict[str, Any], payload: dict[str, Any]) -> None:
    assert result["status"] == "done", result
    events = result["events"]
    assert Counter(e["type"] for e in events) == expected(payload)
    ids = [e["event_id"] for e in events]
    assert len(ids) == len(set(ids)), "an event was recorded twice"
    root = [e for e in events if e["parent_id"] is None]
    assert len(root) == 1 and root[0]["type"] == "task.created"
    for event in events:
        if event["parent_id"] is not None:
            assert event["parent_id"] in ids, f"{event} has no recorded parent"
            assert event["source"], event


def test_a_run_goes_through_the_whole_chain_and_metrics_agree(system: dict[str, Any]) -> None:
    produced_before = counters(system, "migrate_events_produced_total")
    consumed_before = counters(system, "migrate_events_consumed_total")
    result = wait(system, submit(system, TASK))
    check_run(result, TASK)
    assert {e["type"] for e in result["events"]} >= SIX
    seen = Counter(e["type"] for e in result["events"])
    produced = counters(system, "migrate_events_produced_total") - produced_before
    consumed = counters(system, "migrate_events_consumed_total") - consumed_before
    assert produced == seen - Counter({"task.created": 1})
    # each event is consumed once per plugin that consumes its type
    graph = inventory.event_graph(inventory.scan(EXAMPLE_APP).plugins)
    fan_out = Counter({t: sum(t in p["consumes"] for p in graph.values()) for t in seen})
    assert consumed == Counter({t: seen[t] * fan_out[t] for t in seen if fan_out[t]})
    # the live stream tells the same story and ends
    status, stream = http("GET", f"{system['orchestrator']}/runs/{result['run']}/events")
    assert status == 200
    lines = [line for line in stream.splitlines() if line.startswith("event: ")]
    assert Counter(line[7:] for line in lines if line != "event: end") == seen
    assert lines[-1] == "event: end"


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(system: dict[str, Any]) -> None:
    """kill -9 of the summarizer worker's main process while runs wait on it (it is
    frozen first, so the runs are certainly mid-way, and it may hold events it read
    and never acked). The engine restarts it by its policy; the runs complete with
    exactly the legacy chain's events."""
    target = container(system, "worker", "summarizer")
    handle, pid, restarts = main_pid(system, target["name"])
    payloads = [dict(TASK, goal=f"step {i}; then step {i + 1}") for i in range(6)]
    os.kill(pid, signal.SIGSTOP)
    try:
        runs = [submit(system, p) for p in payloads]
        until(
            "report.ready events wait for the frozen summarizer",
            lambda: backlog(system, "events.report.ready", "summarizer-worker") >= 2,
        )
        states = [http("GET", f"{system['orchestrator']}/runs/{r}")[1]["status"] for r in runs]
        assert set(states) == {"running"}, states
    finally:
        os.kill(pid, signal.SIGKILL)  # a crash: the engine restarts it (docker kill would not)
    back(handle, restarts, target["url"])
    for run, payload in zip(runs, payloads, strict=True):
        check_run(wait(system, run), payload)


def test_the_orchestrator_killed_mid_run_loses_nothing(system: dict[str, Any]) -> None:
    """kill -9 of the orchestrator while the workers go on: the notices it has not
    read wait on the bus, the run state is in PostgreSQL, and the restarted
    orchestrator completes every run."""
    target = container(system, "orchestrator")
    handle, pid, restarts = main_pid(system, target["name"])
    payloads = [dict(TASK, goal=f"part {i}; then part {i + 1}") for i in range(6)]
    runs = [submit(system, p) for p in payloads]
    os.kill(pid, signal.SIGSTOP)
    try:
        until(
            "settled notices wait for the frozen orchestrator",
            lambda: backlog(system, "events.migrate.settled", "orchestrator") >= 1,
        )
    finally:
        os.kill(pid, signal.SIGKILL)
    back(handle, restarts, target["url"])
    for run, payload in zip(runs, payloads, strict=True):
        check_run(wait(system, run), payload)


def test_a_plugin_that_raises_is_retried_then_dead_lettered(system: dict[str, Any]) -> None:
    bad = dict(TASK, max_steps="many")  # the planner does int(payload["max_steps"])
    result = wait(system, submit(system, bad))
    assert result["status"] == "failed"
    assert "planner" in result["error"] and "ValueError" in result["error"], result
    status = run_json("-C", str(system["project"]), "dev", "status")
    dead = {d["type"]: d for d in status["dead_letters"]}
    assert dead["task.created"]["count"] >= 1, status["dead_letters"]
    assert "ValueError" in (dead["task.created"]["last_reason"] or "")
    # the worker is still there for the next run
    check_run(wait(system, submit(system, TASK)), TASK)


def test_a_malformed_message_is_dead_lettered_and_the_worker_goes_on(
    system: dict[str, Any],
) -> None:
    system["redis"].xadd("events.plan.ready", {b"event": b"{not json"})
    system["redis"].xadd("events.plan.ready", {b"event": b'{"type": "plan.ready"}'})
    check_run(wait(system, submit(system, TASK)), TASK)
    deadline = time.monotonic() + DEADLINE
    while True:
        status = run_json("-C", str(system["project"]), "dev", "status")
        dead = {d["type"]: d for d in status["dead_letters"]}
        if dead.get("plan.ready", {}).get("count", 0) >= 4:  # two messages, two groups
            break
        assert time.monotonic() < deadline, status["dead_letters"]
        time.sleep(0.2)  # poll interval, bounded by the deadline
    assert dead["plan.ready"]["last_reason"]


def test_bad_requests_get_json_errors(system: dict[str, Any]) -> None:
    url = f"{system['orchestrator']}/runs"
    status, body = http("POST", url, {"event": "no.such.type", "payload": {}})
    assert status == 422 and "task.created" in body["error"], body
    status, body = http("POST", url, "not an object")
    assert status == 400 and "error" in body, body
    port = int(system["orchestrator"].rsplit(":", 1)[1])
    claim = b"POST /runs HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n{"
    status, _, body = raw_request(port, claim)  # the server answers before the body comes
    assert status == 413 and "error" in body, body
    assert http("GET", f"{system['orchestrator']}/runs/{uuid.uuid4()}")[0] == 404
