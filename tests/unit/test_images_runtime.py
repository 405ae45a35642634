"""The plugin host (src/migrate/runtime) as a real process on 127.0.0.1, no Docker."""

from __future__ import annotations

import http.client
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLE_APP, write

DEADLINE = 20.0  # seconds: a bound on waiting, never a measurement


class Host:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[dict[str, Any]] = []
        self.port = int(self.wait_for("listening")["port"])

    def wait_for(self, message: str) -> dict[str, Any]:
        """Read JSON log lines until one says `message` (polling with a deadline)."""
        assert self.process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            for record in self.lines:
                if record["message"] == message:
                    return record
            if selector.select(timeout=deadline - time.monotonic()):
                line = self.process.stdout.readline()
                if not line:
                    break
                self.lines.append(json.loads(line))  # every line is JSON
        raise AssertionError(f"no {message!r} log line; got {self.lines}")

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=DEADLINE)
        try:
            connection.request(method, path, body=body)
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()


def start(plugin_dir: Path, entrypoint: str, **env: str) -> subprocess.Popen[str]:
    environment = {
        **os.environ,
        "MIGRATE_PLUGIN_DIR": str(plugin_dir),
        "MIGRATE_ENTRYPOINT": entrypoint,
        "MIGRATE_PLUGIN": plugin_dir.name,
        "HOST": "127.0.0.1",
        "PORT": "0",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "migrate.runtime"],
        env=environment,
        stdout=subprocess.PIPE,
        text=True,
        cwd=plugin_dir,
    )


@pytest.fixture
def planner() -> Iterator[Host]:
    process = start(EXAMPLE_APP / "plugins" / "planner", "planner:handle")
    try:
        yield Host(process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=DEADLINE)
        assert process.stdout is not None
        process.stdout.close()


def test_healthz_and_invoke(planner: Host) -> None:
    assert planner.request("GET", "/healthz") == (200, {"status": "ok"})
    status, result = planner.request("POST", "/invoke", json.dumps({"goal": "a. b"}).encode())
    assert status == 200
    assert result["event"] == "plan.ready" and result["step_count"] == 2
    assert planner.request("POST", "/invoke", b"")[0] == 200  # no body: {}


def test_bad_requests(planner: Host) -> None:
    assert planner.request("POST", "/invoke", b"{not json")[0] == 400
    assert planner.request("POST", "/invoke", b"[1, 2]")[0] == 400
    assert planner.request("GET", "/nope")[0] == 404
    assert planner.request("POST", "/healthz", b"{}")[0] == 405


def test_sigterm_stops_cleanly_and_logs_json(planner: Host) -> None:
    planner.request("POST", "/invoke", b"{}")
    planner.process.send_signal(signal.SIGTERM)
    assert planner.process.wait(timeout=DEADLINE) == 0
    planner.wait_for("stopped")
    request = planner.wait_for("request")
    assert request["path"] == "/invoke" and request["status"] == 200
    assert all({"time", "level", "plugin", "message"} <= set(r) for r in planner.lines)


def test_healthcheck_command(planner: Host) -> None:
    env = {**os.environ, "PORT": str(planner.port), "HOST": "0.0.0.0"}
    check = [sys.executable, "-m", "migrate.runtime", "--check"]
    assert subprocess.run(check, env=env, check=False).returncode == 0
    planner.process.send_signal(signal.SIGTERM)
    planner.process.wait(timeout=DEADLINE)
    assert subprocess.run(check, env=env, check=False).returncode == 1


def test_plugin_errors_are_500(tmp_path: Path) -> None:
    write(tmp_path / "boom" / "plugin.py", "def handle(p):\n    raise ValueError('no')\n")
    write(tmp_path / "boom" / "odd.py", "def handle(p):\n    return {'x': object()}\n")
    for entrypoint, message in (("plugin:handle", "the plugin failed"), ("odd:handle", "not JSON")):
        process = start(tmp_path / "boom", entrypoint)
        try:
            host = Host(process)
            status, body = host.request("POST", "/invoke", b"{}")
            assert status == 500 and message in body["error"]
        finally:
            process.kill()
            process.wait(timeout=DEADLINE)
            assert process.stdout is not None
            process.stdout.close()


def test_missing_entrypoint_exits_1_with_a_json_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    process = start(tmp_path / "empty", "nowhere:handle")
    out, _ = process.communicate(timeout=DEADLINE)
    assert process.returncode == 1
    record = json.loads(out.splitlines()[0])
    assert record["level"] == "error" and "nowhere" in record["error"]


def test_readyz_metrics_and_json_errors_of_the_service(planner: Host) -> None:
    assert planner.request("GET", "/readyz") == (200, {"ready": True})  # no bus configured
    planner.request("POST", "/invoke", b'{"goal": "a"}')
    connection = http.client.HTTPConnection("127.0.0.1", planner.port, timeout=DEADLINE)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        text = response.read().decode()
    finally:
        connection.close()
    assert response.status == 200
    assert response.getheader("Content-Type", "").startswith("text/plain")
    assert 'migrate_invocations_total{outcome="ok",plugin="planner"} 1.0' in text
    status, body = planner.request("PUT", "/invoke", b"{}")
    assert status == 405 and "POST" in body["error"]
    status, body = planner.request("GET", "/nope")
    assert status == 404 and body == {"error": "no such endpoint /nope"}


def test_debug_errors_add_the_traceback(tmp_path: Path) -> None:
    write(tmp_path / "boom" / "plugin.py", "def handle(p):\n    raise ValueError('no')\n")
    for debug, has_traceback in (("", False), ("1", True)):
        process = start(tmp_path / "boom", "plugin:handle", MIGRATE_DEBUG_ERRORS=debug)
        try:
            status, body = Host(process).request("POST", "/invoke", b"{}")
            assert status == 500 and body["error"] == "the plugin failed" and body["id"]
            assert ("traceback" in body) is has_traceback
            assert ("detail" in body) is has_traceback  # the message only when debugging
            if has_traceback:
                assert body["detail"] == "ValueError: no"
                assert "raise ValueError('no')" in body["traceback"]
        finally:
            process.kill()
            process.wait(timeout=DEADLINE)
            assert process.stdout is not None
            process.stdout.close()


def test_the_healthcheck_imports_no_third_party_library() -> None:
    """`--check` runs every few seconds in every container: standard library only."""
    env = {**os.environ, "PORT": "1", "HOST": "127.0.0.1"}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "migrate.runtime", "--check"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1  # nothing listens on port 1
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "migrate.runtime.host" in imported
    heavy = ("prometheus_client", "redis", "opentelemetry", "psycopg", "confluent_kafka", "yaml")
    assert not [m for m in imported if m.split(".")[0] in heavy]


def test_unknown_role_exits_1() -> None:
    process = start(EXAMPLE_APP / "plugins" / "planner", "planner:handle", MIGRATE_ROLE="boss")
    out, _ = process.communicate(timeout=DEADLINE)
    assert process.returncode == 1
    record = json.loads(out.splitlines()[0])
    assert record["level"] == "error" and "MIGRATE_ROLE='boss'" in record["message"]


def test_event_graph_parsing() -> None:
    from migrate.runtime.orchestrator import Graph, GraphError

    graph = Graph.parse(
        json.dumps(
            {
                "planner": {"consumes": ["task.created"], "produces": ["plan.ready"]},
                "reviewer": {"consumes": ["plan.ready"], "produces": ["review.done"]},
                "researcher": {"consumes": ["plan.ready"]},
            }
        )
    )
    assert graph.consumers_of("plan.ready") == ("researcher", "reviewer")
    assert graph.consumers_of("review.done") == ()
    assert graph.accepted == ["plan.ready", "task.created"]
    # no plugin consumes anything (a data-only project): valid, every run is refused
    assert Graph.parse("{}").accepted == []
    for text, message in (
        ("{nope", "not JSON"),
        ("[]", "must be a JSON object"),
        ('{"p": []}', "must be {"),
        ('{"p": {"consumes": "a"}}', "must be a list"),
        ('{"p": {"consumes": ["bad type!"]}}', "bad event types"),
        ('{"p": {"consumes": ["a"], "emits": []}}', "unknown keys"),
    ):
        with pytest.raises(GraphError, match=re.escape(message)):
            Graph.parse(text)


def test_settled_notices_are_checked() -> None:
    from migrate.runtime.orchestrator import parse_notice

    good = {
        "event_id": "e1",
        "run_id": "r1",
        "type": "task.created",
        "plugin": "planner",
        "outcome": "produced",
        "produced": {"event_id": "e2", "type": "plan.ready", "payload": {"x": 1}},
        "error": None,
        "attempts": 1,
    }
    notice = parse_notice(json.dumps(good).encode())
    assert "payload" not in notice["produced"]
    for change, message in (
        ({"outcome": "maybe"}, "unknown outcome"),
        ({"plugin": ""}, "'plugin'"),
        ({"produced": None}, "without a 'produced'"),
        ({"produced": {"event_id": "e2", "type": "no good"}}, "bad type"),
        ({"attempts": "3"}, "'attempts'"),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            parse_notice(json.dumps({**good, **change}).encode())
    for raw in (b"{not json", b"[1]", b"\xff"):
        with pytest.raises(ValueError):
            parse_notice(raw)
