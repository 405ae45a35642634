"""Projects whose roadmap holds just the checks a test wants, run by real testinfra
against this machine (and a real container or PostgreSQL where a test asks)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

TIMEOUT = 30.0  # seconds: a bound for hosts that do not answer, never a measurement


@pytest.fixture(autouse=True)
def no_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """kubectl sees no kubeconfig: it can only try localhost, never a real cluster."""
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))


def set_roadmap(project: Path, *tasks: dict[str, Any]) -> None:
    """One phase of `manual` tasks: {"id": ..., "checks": [...]} each (phase 2 if given)."""
    phases: dict[int, list[dict[str, Any]]] = {}
    for task in tasks:
        task = dict(task)
        phase = task.pop("phase", 1)
        task.setdefault("title", task["id"].replace("-", " ").capitalize())
        task.setdefault("action", "manual")
        phases.setdefault(phase, []).append(task)
    document = {
        "phases": [{"id": n, "name": f"Phase {n}", "tasks": phases[n]} for n in sorted(phases)]
    }
    (project / "phases" / "roadmap.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`python -m http.server` on 127.0.0.1:<free port>, serving a directory with hello.txt."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "hello.txt").write_text("hello from the test server\n")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # ready when it reports it serves (a line on stderr), not after a sleep
        with contextlib.suppress(Exception):
            _wait_listening(port, server)
        yield port, server
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_listening(port: int, server: subprocess.Popen[bytes]) -> None:
    """Connect until the server accepts (bounded by its exit or 1000 attempts)."""
    for _ in range(1000):
        if server.poll() is not None:
            raise RuntimeError("the http server exited")
        with socket.socket() as probe:
            probe.settimeout(1)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=0.05)
