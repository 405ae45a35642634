"""Run the migrated system as local processes: `python -m migrate.runtime` per role.

The same code the images run, started from this checkout: one orchestrator and
N workers per plugin of a legacy application, on 127.0.0.1 with free ports,
against a real Redis and a real PostgreSQL. For tests and benchmarks that
need the runtime's behaviour without building images (the container path is
tested through `migrate dev up`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate import inventory

REPO = Path(__file__).resolve().parents[3]
DEADLINE = 60.0  # seconds: a bound on waiting, never a measurement


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(method: str, url: str, body: Any = None, timeout: float = 10) -> tuple[int, Any]:
    """One request; (status, parsed JSON or text). No proxies."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with opener.open(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


@dataclass
class Process:
    name: str
    role: str
    plugin: str | None
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['PORT']}"

    def start(self) -> None:
        handle = self.log.open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "migrate.runtime"],
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=self.env.get("MIGRATE_PLUGIN_DIR") or str(REPO),
        )
        handle.close()

    def ready(self) -> bool:
        if self.popen is None or self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited: {self.tail()}")
        with contextlib.suppress(OSError):
            return http("GET", self.url + "/readyz", timeout=2)[0] == 200
        return False

    def signal(self, signum: int) -> None:
        assert self.popen is not None
        self.popen.send_signal(signum)

    def stop(self, timeout: float = 20) -> int | None:
        if self.popen is None or self.popen.poll() is not None:
            return self.popen.returncode if self.popen else None
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)
            return None

    def tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class LocalSystem:
    app: Path
    redis_url: str
    database_url: str
    logs: Path
    schema: str = "legacy"
    workers_per_plugin: int = 1
    env: dict[str, str] = field(default_factory=dict)  # added to every process
    poll_s: float = 0.01  # how often wait_run asks GET /runs/ID
    processes: list[Process] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.inventory = inventory.scan(self.app)
        self.logs.mkdir(parents=True, exist_ok=True)

    def _base(self, role: str, name: str) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "HOME", "TMPDIR")}
        return {
            **keep,
            "PYTHONPATH": str(REPO / "src"),
            "PYTHONUNBUFFERED": "1",
            "MIGRATE_ROLE": role,
            "HOST": "127.0.0.1",
            "PORT": str(free_port()),
            "MIGRATE_BUS": "redis",
            "REDIS_URL": self.redis_url,
            "MIGRATE_CONSUMER": name,
            **self.env,
        }

    def add_orchestrator(self) -> Process:
        env = self._base("orchestrator", "orchestrator")
        env.update(
            DATABASE_URL=self.database_url,
            DATABASE_SCHEMA=self.schema,
            MIGRATE_EVENT_GRAPH=json.dumps(inventory.event_graph(self.inventory.plugins)),
        )
        process = Process("orchestrator", "orchestrator", None, env, self.logs / "orchestrator.log")
        self.processes.append(process)
        return process

    def add_plugin(self, plugin: inventory.Plugin, role: str, index: int = 1) -> Process:
        name = f"{plugin.name}-{role}-{index}"
        env = self._base(role, name)
        events = plugin.manifest.events
        env.update(
            MIGRATE_PLUGIN=plugin.name,
            MIGRATE_PLUGIN_VERSION=plugin.version or "0",
            MIGRATE_ENTRYPOINT=plugin.entrypoint,
            MIGRATE_PLUGIN_DIR=str(plugin.path),
        )
        if role == "worker":
            env.update(
                MIGRATE_CONSUMES=",".join(events.consumes),
                MIGRATE_PRODUCES=",".join(events.produces),
                MIGRATE_GROUP=f"{plugin.name}-worker",
            )
        process = Process(name, role, plugin.name, env, self.logs / f"{name}.log")
        self.processes.append(process)
        return process

    def add_all(self) -> LocalSystem:
        self.add_orchestrator()
        for plugin in self.inventory.plugins:
            if plugin.manifest.events.consumes:
                for index in range(1, self.workers_per_plugin + 1):
                    self.add_plugin(plugin, "worker", index)
        return self

    def start(self) -> None:
        for process in self.processes:
            if process.popen is None or process.popen.poll() is not None:
                process.start()
        self.wait_ready()

    def wait_ready(self, processes: list[Process] | None = None) -> None:
        waiting = list(processes or self.processes)
        deadline = time.monotonic() + DEADLINE
        while waiting:
            waiting = [p for p in waiting if not p.ready()]
            if waiting and time.monotonic() > deadline:
                names = ", ".join(p.name for p in waiting)
                raise TimeoutError(f"not ready within {DEADLINE} s: {names}\n{waiting[0].tail()}")
            if waiting:
                time.sleep(0.05)  # polling interval, not synchronisation

    def stop(self) -> None:
        for process in self.processes:
            process.stop()

    def get(self, name: str) -> Process:
        return next(p for p in self.processes if p.name == name)

    @property
    def orchestrator(self) -> Process:
        return next(p for p in self.processes if p.role == "orchestrator")

    def submit(self, event: str, payload: dict[str, Any]) -> str:
        status, body = http(
            "POST", self.orchestrator.url + "/runs", {"event": event, "payload": payload}
        )
        if status != 202:
            raise AssertionError(f"POST /runs answered {status}: {body}")
        return str(body["run"])

    def wait_run(self, run: str, timeout: float = DEADLINE) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status, body = http("GET", f"{self.orchestrator.url}/runs/{run}")
            if status == 200 and body["status"] != "running":
                return dict(body)
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run} still {body!r} after {timeout} s")
            time.sleep(self.poll_s)

    def __enter__(self) -> LocalSystem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
