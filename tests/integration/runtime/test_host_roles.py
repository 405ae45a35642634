"""The runtime's HTTP host in its three roles, as real processes on 127.0.0.1
(`python -m migrate.runtime`), against the real redis-server and PostgreSQL.

The helpers here (Runtime, plugin_env, publish, ...) are used by
test_orchestrator.py too.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate.runtime import settings
from tests.conftest import EXAMPLE_APP, write

pytestmark = pytest.mark.integration

DEADLINE = 30.0  # seconds: a bound on waiting, never a measurement
PLUGINS = EXAMPLE_APP / "plugins"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


# -- helpers -------------------------------------------------------------------------------


class Runtime:
    """One `python -m migrate.runtime` process; a thread collects its JSON log lines."""

    def __init__(self, env: dict[str, str], *, name: str = "runtime") -> None:
        inherited = {k: v for k, v in os.environ.items() if k not in settings.NAMES}
        self.name = name
        self.env = {**inherited, "HOST": "127.0.0.1", "PORT": "0", **env}
        self.lines: list[dict[str, Any]] = []
        self.garbage: list[str] = []  # stdout lines that are not JSON objects
        self.stderr: list[str] = []
        self._changed = threading.Condition()
        self._eof = False
        self.process = subprocess.Popen(
            [sys.executable, "-m", "migrate.runtime"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        self._port: int | None = None

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError
            except ValueError:
                with self._changed:
                    self.garbage.append(line)
                continue
            with self._changed:
                self.lines.append(record)
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    def output(self) -> list[dict[str, Any]]:
        """Every log line, once the process has closed its stdout (exited)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._eof, timeout=DEADLINE):
                raise AssertionError(f"{self.name} did not end; lines {self.lines[-15:]}")
            return list(self.lines)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)

    def wait_for(self, message: str, *, timeout: float = DEADLINE, **fields: Any) -> dict[str, Any]:
        """The first log line with `message` (and these field values), waiting for it."""

        def found() -> dict[str, Any] | None:
            for record in self.lines:
                if record.get("message") == message and all(
                    record.get(k) == v for k, v in fields.items()
                ):
                    return record
            return None

        deadline = time.monotonic() + timeout
        with self._changed:
            while (record := found()) is None:
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    raise AssertionError(
                        f"{self.name}: no {message!r} log line; exit {self.process.poll()}; "
                        f"lines {self.lines[-15:]}; stderr {''.join(self.stderr)[-3000:]}"
                    )
                self._changed.wait(min(left, 0.2))
            return record

    @property
    def port(self) -> int:
        if self._port is None:
            self._port = int(self.wait_for("listening")["port"])
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        """(status, headers, the JSON body or the text when it is not JSON)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=DEADLINE)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            raw = response.read()
            answer_headers = {k.lower(): v for k, v in response.getheaders()}
        finally:
            connection.close()
        try:
            return response.status, answer_headers, json.loads(raw)
        except ValueError:
            return response.status, answer_headers, raw.decode()

    def get(self, path: str) -> tuple[int, Any]:
        status, _, body = self.request("GET", path)
        return status, body

    def post(self, path: str, document: Any) -> tuple[int, Any]:
        status, _, body = self.request("POST", path, json.dumps(document).encode())
        return status, body

    def signal(self, signum: int) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=DEADLINE)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=DEADLINE)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@contextmanager
def started_runtimes() -> Iterator[Callable[..., Runtime]]:
    """Start runtime processes; every one is killed at the end."""
    started: list[Runtime] = []

    def start(env: dict[str, str], *, name: str = "runtime") -> Runtime:
        runtime = Runtime(env, name=name)
        started.append(runtime)
        return runtime

    try:
        yield start
    finally:
        for runtime in started:
            runtime.close()
    for runtime in started:
        assert not runtime.garbage, (
            f"{runtime.name} wrote lines that are not JSON: {runtime.garbage}"
        )


@pytest.fixture
def runtimes() -> Iterator[Callable[..., Runtime]]:
    with started_runtimes() as start:
        yield start


def poll(what: str, probe: Callable[[], Any], timeout: float = DEADLINE) -> Any:
    """Call `probe` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last {last!r}")


def manifest(name: str, plugins: Path = PLUGINS) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((plugins / name / "plugin.yaml").read_text())
    return document


def plugin_env(
    name: str, redis_url: str, *, role: str = "worker", plugins: Path = PLUGINS, **extra: str
) -> dict[str, str]:
    """The environment `migrate dev up` gives a plugin's container, from its plugin.yaml."""
    plugin = manifest(name, plugins)
    events = plugin.get("events") or {}
    return {
        "MIGRATE_ROLE": role,
        "MIGRATE_PLUGIN": plugin["name"],
        "MIGRATE_PLUGIN_VERSION": str(plugin.get("version", "0")),
        "MIGRATE_ENTRYPOINT": plugin.get("entrypoint") or "plugin:handle",
        "MIGRATE_PLUGIN_DIR": str(plugins / name),
        "MIGRATE_BUS": "redis",
        "REDIS_URL": redis_url,
        "MIGRATE_CONSUMES": ",".join(events.get("consumes", [])),
        "MIGRATE_PRODUCES": ",".join(events.get("produces", [])),
        "MIGRATE_CONSUMER": f"{plugin['name']}-{uuid.uuid4().hex[:6]}",
        "MIGRATE_RETRY_BASE_S": "0.01",
        "MIGRATE_MAX_ATTEMPTS": "2",
        **extra,
    }


def graph_of(plugins: Path, names: list[str] | None = None) -> str:
    """MIGRATE_EVENT_GRAPH for the plugins under `plugins`."""
    graph = {}
    for directory in sorted(p for p in plugins.iterdir() if (p / "plugin.yaml").is_file()):
        plugin = manifest(directory.name, plugins)
        if names is None or plugin["name"] in names:
            events = plugin.get("events") or {}
            graph[plugin["name"]] = {
                "consumes": events.get("consumes", []),
                "produces": events.get("produces", []),
            }
    return json.dumps(graph)


def orchestrator_env(redis_url: str, database_url: str, graph: str, **extra: str) -> dict[str, str]:
    return {
        "MIGRATE_ROLE": "orchestrator",
        "MIGRATE_BUS": "redis",
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "DATABASE_SCHEMA": "runtime_test",
        "MIGRATE_EVENT_GRAPH": graph,
        "MIGRATE_CONSUMER": "orchestrator-1",
        **extra,
    }


def redis_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=5)


def publish(redis_url: str, type: str, payload: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Put one event envelope on the bus by hand, as another producer would."""
    from migrate.runtime import envelope

    event = envelope.new(type, payload, source="test", **fields)
    client = redis_client(redis_url)
    try:
        client.xadd(f"events.{type}", {"event": envelope.encode(event)})
    finally:
        client.close()
    return event


def entries(redis_url: str, stream: str) -> list[dict[str, Any]]:
    client = redis_client(redis_url)
    try:
        return [json.loads(fields[b"event"]) for _, fields in client.xrange(stream)]
    finally:
        client.close()


def pending(redis_url: str, stream: str, group: str) -> int:
    client = redis_client(redis_url)
    try:
        return int(client.xpending(stream, group)["pending"])
    finally:
        client.close()


def unread(redis_url: str, stream: str, group: str) -> int | None:
    """Messages of `stream` that `group` has not acked (read or not); None: no such group."""
    client = redis_client(redis_url)
    try:
        for info in client.xinfo_groups(stream):
            if info["name"].decode() == group:
                return int(info["lag"] or 0) + int(info["pending"])
        return None
    finally:
        client.close()


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a Prometheus text exposition, or None."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def raw_request(port: int, data: bytes) -> tuple[int, dict[str, str], Any]:
    """Send bytes as they are (headers that lie, bodies never sent) and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
    return response.status, headers, json.loads(body)


def slow_plugin(root: Path) -> Path:
    """A plugin that signals it started (a file) and returns once released (a file)."""
    write(
        root / "slow" / "plugin.yaml",
        """
        name: slow
        version: "1.0.0"
        events:
          consumes: [slow.started]
          produces: [slow.done]
        """,
    )
    write(
        root / "slow" / "plugin.py",
        """
        import pathlib
        import time


        def handle(payload):
            folder = pathlib.Path(payload["dir"])
            (folder / "started").touch()
            deadline = time.monotonic() + 60
            while not (folder / "release").exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            return {"event": "slow.done", "released": (folder / "release").exists()}
        """,
    )
    return root


# -- every role: /healthz, /readyz, /metrics ------------------------------------------------


def test_service_serves_probes_metrics_and_invoke(runtimes: Callable[..., Runtime]) -> None:
    service = runtimes(plugin_env("planner", "", role="service", MIGRATE_BUS=""), name="service")
    assert service.get("/healthz") == (200, {"status": "ok"})
    assert service.get("/readyz") == (200, {"ready": True})
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    status, headers, result = service.request(
        "POST", "/invoke", json.dumps({"goal": "a. b"}).encode(), {"traceparent": parent}
    )
    assert status == 200 and result["event"] == "plan.ready" and result["step_count"] == 2
    trace_id = parent.split("-")[1]
    assert headers["traceparent"].split("-")[1] == trace_id  # the span is a child of the caller's
    assert headers["traceparent"] != parent
    status, headers, text = service.request("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert metric(text, "migrate_invocations_total", plugin="planner", outcome="ok") == 1.0
    assert metric(text, "migrate_invocation_seconds_count", plugin="planner") == 1.0


def test_worker_serves_probes_and_handles_events(
    runtimes: Callable[..., Runtime], redis_url: str
) -> None:
    worker = runtimes(plugin_env("planner", redis_url), name="planner")
    assert worker.get("/healthz") == (200, {"status": "ok"})
    poll("the worker ready", lambda: worker.get("/readyz") == (200, {"ready": True}))
    event = publish(redis_url, "task.created", {"goal": "write it. test it"})
    produced = poll("plan.ready", lambda: entries(redis_url, "events.plan.ready"))
    assert produced[0]["parent_id"] == event["event_id"]
    assert produced[0]["run_id"] == event["run_id"] and produced[0]["source"] == "planner"
    assert produced[0]["payload"]["step_count"] == 2

    def counted() -> float | None:
        status, _, text = worker.request("GET", "/metrics")
        assert status == 200
        return metric(text, "migrate_events_consumed_total", plugin="planner", type="task.created")

    assert poll("the consumed counter", counted) == 1.0
    assert pending(redis_url, "events.task.created", "planner-worker") == 0


def test_orchestrator_serves_probes_and_metrics(
    runtimes: Callable[..., Runtime], redis_url: str, database_url: str
) -> None:
    orchestrator = runtimes(orchestrator_env(redis_url, database_url, graph_of(PLUGINS)))
    assert orchestrator.get("/healthz") == (200, {"status": "ok"})
    poll("the orchestrator ready", lambda: orchestrator.get("/readyz") == (200, {"ready": True}))
    status, headers, text = orchestrator.request("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert "migrate_runs_total" in text


# -- readiness follows the bus and the database ----------------------------------------------


@pytest.mark.parametrize("role", ["service", "worker", "orchestrator"])
def test_readyz_fails_while_the_bus_is_unreachable(
    role: str, runtimes: Callable[..., Runtime], redis_url: str, database_url: str
) -> None:
    if role == "orchestrator":
        env = orchestrator_env(UNREACHABLE_REDIS, database_url, graph_of(PLUGINS))
    else:
        env = plugin_env("planner", UNREACHABLE_REDIS, role=role)
    runtime = runtimes(env, name=role)
    assert runtime.get("/healthz") == (200, {"status": "ok"})

    def names_the_bus() -> bool:
        status, body = runtime.get("/readyz")
        assert status == 503 and body["ready"] is False, body
        return any("127.0.0.1:1" in reason for reason in body["reasons"])

    poll("readyz to name the bus", names_the_bus)  # a worker says "starting" at first
    for _ in range(3):  # asked again and again: still 503, never a crash
        status, body = runtime.get("/readyz")
        assert status == 503 and body["ready"] is False, body
        assert any("127.0.0.1:1" in reason for reason in body["reasons"]), body
    assert runtime.process.poll() is None
    if role == "orchestrator":  # the database is fine: only the bus is a reason
        assert not any("database" in reason for reason in body["reasons"]), body
        runtime.wait_for("run store ready")
        assert runtime.post("/runs", {"event": "task.created"})[0] == 202  # kept, published later
    retrying = {
        "worker": "bus unavailable; retrying",
        "orchestrator": "the bus does not answer: retrying",
    }
    if role in retrying:  # the loop keeps retrying, and says so once
        runtime.wait_for(retrying[role])
    assert runtime.signal(signal.SIGTERM) == 0


def test_orchestrator_readyz_fails_while_the_database_is_unreachable(
    runtimes: Callable[..., Runtime], redis_url: str
) -> None:
    url = "postgresql://nobody@127.0.0.1:1/nothing"
    orchestrator = runtimes(orchestrator_env(redis_url, url, graph_of(PLUGINS)))
    status, body = orchestrator.get("/readyz")
    assert status == 503 and any("database" in reason for reason in body["reasons"]), body
    status, body = orchestrator.post("/runs", {"event": "task.created"})
    assert status == 503 and "error" in body
    orchestrator.wait_for("the database does not answer: retrying")
    assert orchestrator.process.poll() is None
    assert orchestrator.signal(signal.SIGTERM) == 0


# -- shutdown ---------------------------------------------------------------------------------


def test_sigterm_drains_a_worker_with_an_event_in_flight(
    runtimes: Callable[..., Runtime], redis_url: str, tmp_path: Path
) -> None:
    plugins = slow_plugin(tmp_path / "plugins")
    worker = runtimes(plugin_env("slow", redis_url, plugins=plugins), name="slow")
    poll("the worker ready", lambda: worker.get("/readyz")[0] == 200)
    # an idle keep-alive connection must not hold up the exit
    idle = http.client.HTTPConnection("127.0.0.1", worker.port, timeout=DEADLINE)
    idle.request("GET", "/healthz")
    assert idle.getresponse().read() == b'{"status": "ok"}'
    folder = tmp_path / "flags"
    folder.mkdir()
    event = publish(redis_url, "slow.started", {"dir": str(folder)})
    poll("the plugin to start", (folder / "started").exists)

    worker.process.send_signal(signal.SIGTERM)
    worker.wait_for("stopping", signal="SIGTERM")  # the signal is seen while the event is in flight
    assert not entries(redis_url, "events.slow.done")  # not released yet: still in flight
    (folder / "release").touch()
    assert worker.process.wait(timeout=DEADLINE) == 0
    idle.close()

    done = entries(redis_url, "events.slow.done")
    assert [e["parent_id"] for e in done] == [event["event_id"]]
    assert done[0]["payload"]["released"] is True
    assert pending(redis_url, "events.slow.started", "slow-worker") == 0  # acked
    notices = entries(redis_url, "events.migrate.settled")
    assert [(n["event_id"], n["outcome"]) for n in notices] == [(event["event_id"], "produced")]
    worker.wait_for("stopped", exit_code=0)


def test_sigterm_stops_an_idle_service_with_open_connections(
    runtimes: Callable[..., Runtime],
) -> None:
    service = runtimes(plugin_env("planner", "", role="service", MIGRATE_BUS=""), name="service")
    connections = []
    for _ in range(3):
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=DEADLINE)
        connection.request("GET", "/healthz")
        connection.getresponse().read()
        connections.append(connection)  # kept open: keep-alive
    assert service.signal(signal.SIGTERM) == 0
    service.wait_for("stopped", exit_code=0)
    for connection in connections:
        connection.close()


# -- bad requests, bad configuration -----------------------------------------------------------


def test_bad_requests_get_json_errors(runtimes: Callable[..., Runtime]) -> None:
    service = runtimes(plugin_env("planner", "", role="service", MIGRATE_BUS=""), name="service")
    status, _, body = service.request("GET", "/nope")
    assert status == 404 and "/nope" in body["error"]
    status, headers, body = service.request("POST", "/healthz", b"{}")
    assert status == 405 and headers["allow"] == "GET" and "error" in body
    status, headers, body = service.request("GET", "/invoke")
    assert status == 405 and headers["allow"] == "POST"
    status, _, body = service.request("DELETE", "/metrics")
    assert status == 405 and "error" in body
    assert service.request("POST", "/invoke", b"{not json")[0] == 400
    assert service.request("POST", "/invoke", b"[1]")[0] == 400
    port = service.port
    too_big = b"POST /invoke HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n"
    status, headers, body = raw_request(port, too_big)  # answered without sending the body
    assert status == 413 and "larger" in body["error"] and headers["connection"] == "close"
    chunked = b"POST /invoke HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    assert raw_request(port, chunked)[0] == 411
    status, _, body = raw_request(port, b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 501 and "error" in body
    status, _, body = raw_request(port, b"GARBAGE\r\n\r\n")
    assert status == 400 and "error" in body
    assert service.get("/healthz") == (200, {"status": "ok"})  # still serving


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"MIGRATE_ROLE": "janitor"}, "MIGRATE_ROLE='janitor'"),
        ({"MIGRATE_ROLE": "orchestrator", "MIGRATE_EVENT_GRAPH": "{nope"}, "not JSON"),
        (
            {"MIGRATE_ROLE": "orchestrator", "MIGRATE_EVENT_GRAPH": '{"p": {"consumes": "a"}}'},
            "must be a list of event types",
        ),
        ({"MIGRATE_ROLE": "worker", "MIGRATE_ENTRYPOINT": "nowhere:handle"}, "nowhere"),
        # the orchestrator builds with no plugin: what is left to refuse is its address
        ({"MIGRATE_ROLE": "orchestrator", "MIGRATE_EVENT_GRAPH": "{}", "PORT": "http"}, "http"),
        ({"MIGRATE_ROLE": "orchestrator", "MIGRATE_EVENT_GRAPH": "{}", "PORT": "70000"}, "70000"),
    ],
)
def test_bad_configuration_exits_1_with_a_json_error(
    runtimes: Callable[..., Runtime], env: dict[str, str], expected: str
) -> None:
    common = {
        "MIGRATE_BUS": "redis",
        "REDIS_URL": UNREACHABLE_REDIS,
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nothing",
    }
    runtime = runtimes({**common, **env})
    assert runtime.process.wait(timeout=DEADLINE) == 1
    lines = runtime.output()
    errors = [line for line in lines if line["level"] == "error"]
    assert errors and expected in json.dumps(errors[0]), lines
    assert not any(line["message"] == "listening" for line in lines)
