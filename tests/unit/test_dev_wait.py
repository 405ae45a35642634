"""Waiting for readiness, with a stand-in for the engine and real HTTP servers on 127.0.0.1:
a container that exits, crashes, holds a taken port or is never ready is an error that
names it, with the tail of its log (passwords masked)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from migrate.dev import plan, probe
from migrate.dev.engine import ContainerError, PortInUseError
from migrate.dev.verbs import _wait, free_port
from migrate.reporting import RecordingReporter


class FakeEngine:
    """What `_wait` asks the engine: a container's state, restart count and log."""

    def __init__(self, status: str = "running", restarts: int = 0, log: bytes = b"") -> None:
        self.status, self.restarts, self.log = status, restarts, log

    def inspect_container(self, name: str) -> dict[str, Any]:
        return {"State": {"Status": self.status, "ExitCode": 1}, "RestartCount": self.restarts}

    def logs(self, name: str, **options: Any) -> bytes:
        return self.log


def spec(port: int, name: str = "demo-dev-worker-planner") -> plan.ContainerSpec:
    return plan.ContainerSpec(
        name=name,
        role="worker",
        plugin="planner",
        image="demo/planner:1",
        env=(),
        port=port,
        container_port=port,
        url=f"http://127.0.0.1:{port}",
        probe="http",
    )


@pytest.fixture
def server() -> Iterator[tuple[int, dict[str, int]]]:
    """An HTTP server on 127.0.0.1; `codes` says what each path answers (default 404)."""
    codes: dict[str, int] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = codes.get(self.path, 404)
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], codes
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_ready_when_readyz_answers_200(server: tuple[int, dict[str, int]]) -> None:
    port, codes = server
    codes["/readyz"] = 200
    reporter = RecordingReporter()
    ready = _wait(FakeEngine(), [spec(port)], time.monotonic() + 30, reporter)  # type: ignore[arg-type]
    assert ready == {"demo-dev-worker-planner": True}
    assert ("advance", "dev:ready:worker", 1) in reporter.events


def test_not_ready_while_readyz_says_503(server: tuple[int, dict[str, int]]) -> None:
    port, codes = server
    codes["/readyz"], codes["/healthz"] = 503, 200
    with pytest.raises(ContainerError, match=r"is not ready in time: /readyz answered 503"):
        _wait(FakeEngine(), [spec(port)], time.monotonic(), RecordingReporter())  # type: ignore[arg-type]


def test_a_runtime_without_readyz_is_asked_healthz(server: tuple[int, dict[str, int]]) -> None:
    port, codes = server
    codes["/healthz"] = 200
    ok, reason = probe.http(f"http://127.0.0.1:{port}")
    assert ok and "/healthz" in reason
    codes["/healthz"] = 500
    assert probe.http(f"http://127.0.0.1:{port}")[0] is False


def test_nothing_listening_is_not_ready_and_names_the_container() -> None:
    engine = FakeEngine(log=b"starting\nstill starting")
    with pytest.raises(ContainerError) as caught:
        _wait(engine, [spec(free_port())], time.monotonic(), RecordingReporter())  # type: ignore[arg-type]
    text = caught.value.render()
    assert "demo-dev-worker-planner (worker of planner) is not ready in time: no answer" in text
    assert "still starting" in text and "docker logs demo-dev-worker-planner" in text


def test_an_exited_container_fails_at_once_with_its_log_masked() -> None:
    log = b"Traceback ...\nOperationalError: postgresql://runs:hunter2@db:5432/runs refused\n"
    engine = FakeEngine(status="exited", log=log)
    with pytest.raises(ContainerError) as caught:
        _wait(engine, [spec(free_port())], time.monotonic() + 60, RecordingReporter())  # type: ignore[arg-type]
    text = caught.value.render()
    assert "exited (exit code 1)" in text and "OperationalError" in text
    assert "hunter2" not in text and "runs:***@db" in text


def test_a_crash_looping_container_fails() -> None:
    class Crashing(FakeEngine):
        def inspect_container(self, name: str) -> dict[str, Any]:
            self.restarts += 1
            return {"State": {"Status": "restarting", "ExitCode": 1}, "RestartCount": self.restarts}

    with pytest.raises(ContainerError, match="keeps crashing"):
        _wait(Crashing(), [spec(free_port())], time.monotonic() + 60, RecordingReporter())  # type: ignore[arg-type]


def test_a_taken_port_says_so() -> None:
    engine = FakeEngine(status="exited", log=b"OSError: [Errno 98] Address already in use\n")
    port = free_port()
    with pytest.raises(PortInUseError) as caught:
        _wait(engine, [spec(port)], time.monotonic() + 60, RecordingReporter())  # type: ignore[arg-type]
    assert f"port {port} on 127.0.0.1 is in use" in caught.value.message
    assert "ss -ltnp" in (caught.value.hint or "")


def test_redis_and_postgres_probes_need_an_answer() -> None:
    port = free_port()
    assert probe.redis(port)[0] is False
    assert probe.postgres(port)[0] is False
