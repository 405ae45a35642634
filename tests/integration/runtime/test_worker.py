"""The worker role against a real redis-server (DESIGN 3.9, issue 10): in-process
Worker threads, each test in a Redis database of its own."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from migrate.runtime import envelope, metrics
from migrate.runtime.bus import SETTLED, Delivery
from migrate.runtime.bus.redis import RedisBus
from migrate.runtime.worker import Worker

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
DEADLINE_S = 20.0


class Crash(BaseException):
    """Kills the worker's thread where it is, as kill -9 kills a process."""


def wait_for(what: str, probe: Callable[[], Any], timeout: float = DEADLINE_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def events(bus: RedisBus, type: str) -> list[dict[str, Any]]:
    """Every message of `type` on the bus, decoded (settled notices are plain JSON)."""
    rows = bus._client.xrange(f"events.{type}", "-", "+")
    return [json.loads(fields[b"event"]) for _, fields in rows]


def notices(bus: RedisBus, event_id: str | None = None) -> list[dict[str, Any]]:
    found = events(bus, SETTLED)
    return [n for n in found if event_id is None or n["event_id"] == event_id]


def pending(bus: RedisBus, type: str, group: str) -> int:
    return int(bus._client.xpending(f"events.{type}", group)["pending"])


def counter(name: str, **labels: str) -> float:
    """The value of one sample of the /metrics exposition (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    body, _ = metrics.exposition()
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


@pytest.fixture
def plugin() -> str:
    """A plugin name of this test's own: metrics are process-wide."""
    return f"p{uuid.uuid4().hex[:8]}"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, redis_url: str, plugin: str) -> pytest.MonkeyPatch:
    for name, value in {
        "MIGRATE_BUS": "redis",
        "REDIS_URL": redis_url,
        "MIGRATE_PLUGIN": plugin,
        "MIGRATE_CONSUMES": "task.created",
        "MIGRATE_PRODUCES": "plan.ready",
        "MIGRATE_CONSUMER": "c1",
        "MIGRATE_MAX_ATTEMPTS": "3",
        "MIGRATE_RETRY_BASE_S": "0.01",
        "MIGRATE_CLAIM_IDLE_MS": "60000",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("MIGRATE_GROUP", "MIGRATE_CACHE_TTL_S", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def bus(redis_url: str) -> Iterator[RedisBus]:
    bus = RedisBus(redis_url)
    yield bus
    bus.close()


@contextmanager
def running(worker: Worker) -> Iterator[threading.Event]:
    """Run `worker` on a thread; on leaving, stop it and check it returned."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            worker.run(stop)
        except Crash:
            pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(DEADLINE_S)
        worker.close()
    assert not thread.is_alive(), "the worker did not return after stop"
    assert not errors, f"the worker raised {errors[0]!r}"


def publish(bus: RedisBus, payload: dict[str, Any], type: str = "task.created") -> dict[str, Any]:
    event = envelope.new(type, payload, source="test", traceparent=TRACEPARENT)
    bus.publish(type, envelope.encode(event))
    return event


def test_happy_path_produces_one_linked_event_then_settles_and_acks(
    env: pytest.MonkeyPatch, bus: RedisBus, plugin: str
) -> None:
    calls: list[dict[str, Any]] = []

    def handle(payload: dict[str, Any]) -> dict[str, Any]:
        calls.append(payload)
        return {"plan": [payload["title"], "step 2"]}

    worker = Worker(handle, plugin=plugin, bus=RedisBus(bus.url))
    consumed = publish(bus, {"title": "write the report"})
    with running(worker):
        notice = wait_for("the settled notice", lambda: notices(bus, consumed["event_id"]))[0]
        assert wait_for("readiness", lambda: worker.ready() is None)

    group = f"{plugin}-worker"
    [produced] = events(bus, "plan.ready")
    assert produced["event_id"] == envelope.child_id(group, consumed["event_id"])
    assert produced["parent_id"] == consumed["event_id"]
    assert produced["run_id"] == consumed["run_id"]
    assert produced["source"] == plugin
    assert produced["payload"] == {"plan": ["write the report", "step 2"]}
    trace_id = TRACEPARENT.split("-")[1]
    assert produced["traceparent"].split("-")[1] == trace_id  # the run's trace goes on
    assert produced["traceparent"] != TRACEPARENT  # ...in a span of its own
    assert notice["outcome"] == "produced"
    assert notice["produced"] == envelope.header(produced)
    assert (notice["type"], notice["plugin"], notice["group"]) == ("task.created", plugin, group)
    assert (notice["run_id"], notice["attempts"], notice["error"]) == (consumed["run_id"], 1, None)
    assert calls == [{"title": "write the report"}]
    assert pending(bus, "task.created", group) == 0
    assert bus.lag(["task.created"], group) == 0
    assert counter("migrate_events_consumed_total", plugin=plugin, type="task.created") == 1
    assert counter("migrate_events_produced_total", plugin=plugin, type="plan.ready") == 1
    assert counter("migrate_invocations_total", plugin=plugin, outcome="ok") == 1


def test_events_published_before_the_worker_started_are_consumed(
    env: pytest.MonkeyPatch, bus: RedisBus, plugin: str
) -> None:
    early = [publish(bus, {"title": str(n)}) for n in range(3)]
    with running(Worker(lambda p: {"ok": p["title"]}, plugin=plugin, bus=RedisBus(bus.url))):
        wait_for("three notices", lambda: len(notices(bus)) == 3)
    produced = events(bus, "plan.ready")
    assert sorted(e["parent_id"] for e in produced) == sorted(e["event_id"] for e in early)


def test_result_event_picks_the_produced_type(
    env: pytest.MonkeyPatch, bus: RedisBus, plugin: str
) -> None:
    env.setenv("MIGRATE_PRODUCES", "review.done,research.done")

    def handle(payload: dict[str, Any]) -> dict[str, Any] | None:
        if payload["kind"] == "none":
            return None
        return {"event": payload["kind"], "n": 1}

    review = publish(bus, {"kind": "review.done"})
    research = publish(bus, {"kind": "research.done"})
    nothing = publish(bus, {"kind": "none"})
    unknown = publish(bus, {"kind": "summary.ready"})
    with running(Worker(handle, plugin=plugin, bus=RedisBus(bus.url))):
        wait_for("four notices", lambda: len(notices(bus)) == 4)

    assert [e["parent_id"] for e in events(bus, "review.done")] == [review["event_id"]]
    assert [e["parent_id"] for e in events(bus, "research.done")] == [research["event_id"]]
    assert notices(bus, nothing["event_id"])[0]["outcome"] == "none"
    [dead_notice] = notices(bus, unknown["event_id"])
    assert dead_notice["outcome"] == "dead"
    assert "'summary.ready'" in dead_notice["error"]
    [letter] = bus.dead_letters("task.created")
    assert letter.event_id == unknown["event_id"]
    assert "not one of MIGRATE_PRODUCES" in letter.reason


def test_a_worker_that_produces_nothing_still_settles(
    env: pytest.MonkeyPatch, bus: RedisBus, plugin: str
) -> None:
    env.setenv("MIGRATE_PRODUCES", "")
    consumed = publish(bus, {"title": "x"})
    with running(Worker(lambda p: {"ignored": True}, plugin=plugin, bus=RedisBus(bus.url))):
        [notice] = wait_for("the notice", lambda: notices(bus, consumed["event_id"]))
    assert notice["outcome"] == "none"
    assert notice["produced"] is None
    assert events(bus, "plan.ready") == []


def test_failures_are_retried_then_dead_lettered_with_error_and_attempts(
    env: pytest.MonkeyPatch, bus: RedisBus, plugin: str
) -> None:
    calls: list[str] = []

    def handle(payload: dict[str, Any]) -> dict[str, Any]:
        calls.append(payload["title"])
        if payload["title"] == "flaky" and calls.count("flaky") < 3:
            raise TimeoutError("upstream slow")
        if payload["title"] == "broken":
            raise ValueError("cannot plan 'broken'")
        return {"ok": True}

    flaky = publish(bus, {"title": "flaky"})
    broken = publish(bus, {"title": "broken"})
    with running(Worker(handle, plugin=plugin, bus=RedisBus(bus.url))):
        wait_for("two notices", lambda: len(notices(bus)) == 2)

    assert calls.count("flaky") == 3 and calls.count("broken") == 3  # MIGRATE_MAX_ATTEMPTS=3
    [flaky_notice] = notices(bus, flaky["event_id"])
    assert (flaky_notice["outcome"], flaky_notice["attempts"]) == ("produced", 3)
    [broken_notice] = notices(bus, broken["event_id"])
    assert broken_notice["outcome"] == "dead"
    assert broken_notice["error"] == "ValueError: cannot plan 'broken'"
    assert broken_notice["attempts"] == 3
    [letter] = bus.dead_letters("task.created")
    assert (letter.event_id, letter.attempts) == (broken["event_id"], 3)
    assert letter.reason == "ValueError: cannot plan 'broken'"
    assert letter.group == f"{plugin}-worker"
    assert envelope.decode(letter.raw)["event_id"] == broken["event_id"]
    assert pending(bus, "task.created", f"{plugin}-worker") == 0
    assert counter("migrate_events_dead_lettered_total", plugin=plugin, type="task.created") == 1
    assert counter("migrate_invocations_total", plugin=plugin, outcome="error") == 5


def test_malformed_messages_are_dead_lettered_and_the_worker_goes_on(
    env: pytest.MonkeyPatch, bus: RedisBus, plugin: str
) -> None:
    bus.publish("task.created", b"this is not JSON")
    bus.publish("task.created", b"[" * 100_000)
    with_ids = {"event_id": "e-bad", "run_id": "r-bad", "type": "task.created", "payload": [1]}
    bus.publish("task.created", json.dumps(with_ids).encode())
    bus._client.xadd("events.task.created", {b"other": b"field"})  # not written by a bus
    good = publish(bus, {"title": "fine"})
    with running(Worker(lambda p: {"ok": 1}, plugin=plugin, bus=RedisBus(bus.url))) as stop:
        wait_for("the good event", lambda: notices(bus, good["event_id"]))
        assert not stop.is_set()

    letters = bus.dead_letters("task.created")
    assert len(letters) == 4
    assert all(letter.reason.startswith("malformed event: ") for letter in letters)
    assert letters[0].raw == b"this is not JSON"
    assert "not JSON" in letters[0].reason
    assert letters[2].event_id == "e-bad" and "'payload'" in letters[2].reason
    [bad_notice] = notices(bus, "e-bad")  # ids readable: the run learns it is dead
    assert (bad_notice["outcome"], bad_notice["run_id"]) == ("dead", "r-bad")
    assert len(notices(bus)) == 2  # no notice for the messages without ids
    assert pending(bus, "task.created", f"{plugin}-worker") == 0
    assert counter("migrate_events_dead_lettered_total", plugin=plugin, type="task.created") == 4


class CrashingBus(RedisBus):
    """A bus whose worker dies at `crash_at` (publish of the produced event, or ack)."""

    def __init__(self, url: str, crash_at: str) -> None:
        super().__init__(url)
        self.crash_at = crash_at

    def publish(self, type: str, body: bytes) -> str:
        if self.crash_at == "publish" and type != SETTLED:
            raise Crash
        return super().publish(type, body)

    def ack(self, group: str, delivery: Delivery) -> None:
        if self.crash_at == "ack":
            raise Crash
        super().ack(group, delivery)


@pytest.mark.parametrize("crash_at", ["publish", "ack"])
def test_a_restarted_worker_republishes_the_same_event_without_calling_the_plugin(
    env: pytest.MonkeyPatch, bus: RedisBus, plugin: str, crash_at: str
) -> None:
    calls: list[dict[str, Any]] = []

    def handle(payload: dict[str, Any]) -> dict[str, Any]:
        calls.append(payload)
        return {"n": len(calls)}

    consumed = publish(bus, {"title": "once"})
    group = f"{plugin}-worker"
    with running(Worker(handle, plugin=plugin, bus=CrashingBus(bus.url, crash_at))):
        wait_for("the plugin call", lambda: calls)
    # the crash left the event pending for consumer c1, its result remembered
    assert pending(bus, "task.created", group) == 1
    assert bus.recall(f"migrate:done:{group}:{consumed['event_id']}") is not None

    with running(Worker(handle, plugin=plugin, bus=RedisBus(bus.url))):  # same consumer name
        wait_for("the event acked", lambda: pending(bus, "task.created", group) == 0)

    assert len(calls) == 1
    produced = events(bus, "plan.ready")
    assert {e["event_id"] for e in produced} == {envelope.child_id(group, consumed["event_id"])}
    assert produced[-1]["payload"] == {"n": 1}
    assert len(produced) == (1 if crash_at == "publish" else 2)  # a duplicate has the same id
    assert {n["outcome"] for n in notices(bus, consumed["event_id"])} == {"produced"}


def test_pending_events_of_a_dead_consumer_are_claimed_after_the_idle_time(
    env: pytest.MonkeyPatch, bus: RedisBus, plugin: str
) -> None:
    env.setenv("MIGRATE_CLAIM_IDLE_MS", "300")
    env.setenv("MIGRATE_CONSUMER", "c2")
    group = f"{plugin}-worker"
    consumed = publish(bus, {"title": "orphan"})
    taken = bus.consume(["task.created"], group, "dead-consumer", block_ms=1000)
    assert [d.message_id for d in taken]  # read by a consumer that then died: never acked
    assert pending(bus, "task.created", group) == 1

    with running(Worker(lambda p: {"ok": 1}, plugin=plugin, bus=RedisBus(bus.url))):
        [notice] = wait_for("the claimed event", lambda: notices(bus, consumed["event_id"]))
    assert notice["outcome"] == "produced"
    assert pending(bus, "task.created", group) == 0
    assert [e["parent_id"] for e in events(bus, "plan.ready")] == [consumed["event_id"]]


def test_stop_drains_the_event_in_flight_and_reads_no_more(
    env: pytest.MonkeyPatch, bus: RedisBus, plugin: str
) -> None:
    entered = threading.Event()
    release = threading.Event()
    calls: list[str] = []

    def handle(payload: dict[str, Any]) -> dict[str, Any]:
        calls.append(payload["title"])
        entered.set()
        assert release.wait(DEADLINE_S)
        return {"done": payload["title"]}

    group = f"{plugin}-worker"
    first = publish(bus, {"title": "first"})
    with running(Worker(handle, plugin=plugin, bus=RedisBus(bus.url))) as stop:
        assert entered.wait(DEADLINE_S)
        publish(bus, {"title": "second"})
        stop.set()  # SIGTERM while the plugin runs
        release.set()
    assert calls == ["first"]
    [notice] = notices(bus)
    assert notice["event_id"] == first["event_id"]
    assert [e["parent_id"] for e in events(bus, "plan.ready")] == [first["event_id"]]
    assert pending(bus, "task.created", group) == 0  # the drained event was acked
    assert bus.lag(["task.created"], group) == 1  # the second one waits for the next worker


def test_an_unreachable_bus_is_reported_by_ready_and_retried(
    env: pytest.MonkeyPatch, plugin: str
) -> None:
    env.setenv("REDIS_URL", "redis://:hunter2@127.0.0.1:1/0")
    worker = Worker(lambda p: p, plugin=plugin)  # connects from MIGRATE_BUS and REDIS_URL
    before = worker.ready()
    assert before is not None and "127.0.0.1:1" in before
    assert "hunter2" not in before
    with running(worker):
        reason = wait_for("a reason", lambda: (r := worker.ready()) and r != "starting" and r)
        assert "unavailable" in reason and "127.0.0.1:1" in reason
        assert "hunter2" not in reason


def test_a_worker_without_consumed_types_is_not_ready(
    env: pytest.MonkeyPatch, bus: RedisBus, plugin: str
) -> None:
    env.setenv("MIGRATE_CONSUMES", "")
    worker = Worker(lambda p: p, plugin=plugin, bus=RedisBus(bus.url))
    assert "MIGRATE_CONSUMES" in (worker.ready() or "")
