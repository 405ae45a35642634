"""The concerns around a plugin (DESIGN 3.9): the result cache in a real Redis,
counted in /metrics, and tracing exported over OTLP/HTTP to a receiver on
127.0.0.1 that decodes what the SDK sends."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from migrate.runtime import concerns, envelope, tracing
from migrate.runtime.bus import SETTLED
from migrate.runtime.bus.redis import RedisBus
from migrate.runtime.worker import Worker
from tests.integration.runtime.test_worker import counter as sample

DEADLINE_S = 20.0
PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def wait_for(what: str, probe: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def plugin() -> str:
    return f"c{uuid.uuid4().hex[:8]}"


@pytest.fixture
def cached(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> str:
    monkeypatch.setenv("MIGRATE_CACHE_TTL_S", "120")
    monkeypatch.setenv("MIGRATE_CACHE_URL", redis_url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    return redis_url


# -- the cache -------------------------------------------------------------------------------


def test_a_cached_result_skips_the_plugin_and_counts_hits_and_misses(
    cached: str, plugin: str
) -> None:
    import redis

    calls: list[dict[str, Any]] = []

    def handle(payload: dict[str, Any]) -> dict[str, Any]:
        calls.append(payload)
        return {"summary": f"{payload['text']} ({len(calls)})"}

    wrapped = concerns.wrap(handle, plugin=plugin, version="1.2.0")
    first = wrapped({"text": "é", "n": 1})
    again = wrapped({"n": 1, "text": "é"})  # same payload, other key order
    assert first == again == {"summary": "é (1)"}
    assert len(calls) == 1
    assert sample("migrate_cache_misses_total", plugin=plugin) == 1
    assert sample("migrate_cache_hits_total", plugin=plugin) == 1
    assert sample("migrate_invocations_total", plugin=plugin, outcome="ok") == 1  # real calls

    canonical = json.dumps(
        {"n": 1, "text": "é"}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    key = f"migrate:cache:{plugin}:1.2.0:{hashlib.sha256(canonical.encode()).hexdigest()}"
    client = redis.Redis.from_url(cached)
    try:
        assert json.loads(client.get(key) or b"null") == first
        assert 0 < client.ttl(key) <= 120
    finally:
        client.close()

    wrapped({"text": "é", "n": 2})  # another payload
    concerns.wrap(handle, plugin=plugin, version="1.3.0")({"text": "é", "n": 1})  # new version
    assert len(calls) == 3
    assert sample("migrate_cache_misses_total", plugin=plugin) == 3


def test_results_that_are_not_json_and_errors_are_not_cached(cached: str, plugin: str) -> None:
    calls: list[str] = []

    def handle(payload: dict[str, Any]) -> Any:
        calls.append(payload["kind"])
        if payload["kind"] == "error":
            raise RuntimeError("no")
        return {"when": object()}

    wrapped = concerns.wrap(handle, plugin=plugin, version="1")
    for _ in range(2):
        wrapped({"kind": "object"})
        with pytest.raises(RuntimeError):
            wrapped({"kind": "error"})
    assert calls == ["object", "error", "object", "error"]
    assert sample("migrate_cache_hits_total", plugin=plugin) == 0
    assert sample("migrate_invocations_total", plugin=plugin, outcome="error") == 2


def test_a_redis_that_is_down_is_a_miss_never_a_failure(
    monkeypatch: pytest.MonkeyPatch, plugin: str, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MIGRATE_CACHE_TTL_S", "60")
    monkeypatch.setenv("MIGRATE_CACHE_URL", "redis://:pw-xyz@127.0.0.1:1/0")
    wrapped = concerns.wrap(lambda p: {"echo": p}, plugin=plugin, version="1")
    assert wrapped({"a": 1}) == {"echo": {"a": 1}}
    assert wrapped({"a": 1}) == {"echo": {"a": 1}}
    assert sample("migrate_cache_misses_total", plugin=plugin) == 2
    assert sample("migrate_cache_hits_total", plugin=plugin) == 0
    logged = capsys.readouterr().out
    assert "counted as a miss" in logged
    assert "pw-xyz" not in logged


def test_without_a_ttl_nothing_is_cached(monkeypatch: pytest.MonkeyPatch, plugin: str) -> None:
    monkeypatch.setenv("MIGRATE_CACHE_TTL_S", "0")
    calls: list[int] = []
    wrapped = concerns.wrap(lambda p: calls.append(1), plugin=plugin, version="1")
    wrapped({})
    wrapped({})
    assert len(calls) == 2
    assert sample("migrate_cache_misses_total", plugin=plugin) == 0
    assert concerns.wrap(wrapped, plugin=plugin, version="1") is wrapped  # never wrapped twice


# -- tracing without a collector -------------------------------------------------------------


def test_without_an_endpoint_spans_still_make_valid_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    tracing.shutdown()
    tracing.setup()
    assert not tracing.enabled()
    with tracing.span("child", traceparent=PARENT) as child:
        assert tracing.valid(child)
        assert child.split("-")[1] == PARENT.split("-")[1]
        assert child.split("-")[2] != PARENT.split("-")[2]
    for parent in (None, "", "garbage", "00-" + "0" * 32 + "-00f067aa0ba902b7-01"):
        with tracing.span("root", traceparent=parent) as root:
            assert tracing.valid(root)
            assert root.split("-")[1] != PARENT.split("-")[1]


def test_without_an_endpoint_the_sdk_is_not_imported() -> None:
    code = (
        "import sys; from migrate.runtime import tracing; tracing.setup()\n"
        "with tracing.span('x') as tp: pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert out.strip() == "[]"


# -- tracing to a collector ------------------------------------------------------------------


class Receiver(ThreadingHTTPServer):
    """A tiny OTLP/HTTP collector: keeps the spans of every POST /v1/traces."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        self.spans: list[Any] = []
        self.services: set[str] = set()
        self.paths: list[str] = []


class ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.paths.append(self.path)
        for resource_spans in request.resource_spans:
            for attribute in resource_spans.resource.attributes:
                if attribute.key == "service.name":
                    self.server.services.add(attribute.value.string_value)
            for scope_spans in resource_spans.scope_spans:
                self.server.spans.extend(scope_spans.spans)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    tracing.shutdown()
    yield server
    tracing.shutdown()
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_workers_span_continues_the_trace_of_the_event(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch, redis_url: str, plugin: str
) -> None:
    for name, value in {
        "MIGRATE_BUS": "redis",
        "REDIS_URL": redis_url,
        "MIGRATE_PLUGIN": plugin,
        "MIGRATE_CONSUMES": "review.done",
        "MIGRATE_PRODUCES": "report.ready",
        "MIGRATE_CONSUMER": "c1",
        "MIGRATE_MAX_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MIGRATE_CACHE_TTL_S", raising=False)
    bus = RedisBus(redis_url)
    worker = Worker(lambda p: {"report": p["review"]}, plugin=plugin, bus=RedisBus(redis_url))
    consumed = envelope.new("review.done", {"review": "ok"}, traceparent=PARENT)
    bus.publish("review.done", envelope.encode(consumed))
    failing = envelope.new("review.done", {}, traceparent=PARENT)  # the plugin raises KeyError
    bus.publish("review.done", envelope.encode(failing))
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        wait_for("two settled notices", lambda: bus._client.xlen(f"events.{SETTLED}") == 2)
    finally:
        stop.set()
        thread.join(DEADLINE_S)
        worker.close()
    [(_, fields)] = bus._client.xrange("events.report.ready")
    produced = json.loads(fields[b"event"])
    bus.close()
    tracing.shutdown()  # flushes the batch

    spans = wait_for("the exported spans", lambda: len(receiver.spans) >= 2 and receiver.spans)
    by_event = {
        {a.key: a.value.string_value for a in s.attributes}["migrate.event_id"]: s
        for s in spans
        if s.name == f"{plugin} review.done"
    }
    span = by_event[consumed["event_id"]]
    _, trace_id, parent_span_id, _ = PARENT.split("-")
    assert span.trace_id.hex() == trace_id
    assert span.parent_span_id.hex() == parent_span_id
    attributes = {a.key: a.value.string_value for a in span.attributes}
    assert attributes["migrate.plugin"] == plugin
    assert span.status.code != span.status.STATUS_CODE_ERROR
    dead = by_event[failing["event_id"]]
    assert dead.status.code == dead.status.STATUS_CODE_ERROR
    assert "KeyError" in dead.status.message
    assert produced["traceparent"].startswith(f"00-{trace_id}-{span.span_id.hex()}-")
    assert receiver.paths == ["/v1/traces"] * len(receiver.paths)
    assert plugin in receiver.services


def test_span_records_a_root_when_there_is_no_parent(receiver: Receiver) -> None:
    tracing.setup()
    assert tracing.enabled()
    with tracing.span("invoke x", attributes={"migrate.role": "service"}) as traceparent:
        pass
    tracing.shutdown()
    [span] = wait_for("the exported span", lambda: receiver.spans)
    assert traceparent.startswith(f"00-{span.trace_id.hex()}-{span.span_id.hex()}-")
    assert int(traceparent[-2:], 16) & 1  # sampled
    assert span.parent_span_id == b""
