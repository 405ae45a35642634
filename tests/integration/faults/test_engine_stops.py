"""The Docker engine goes away in the middle of an apply, then comes back.

The engine is the real one of the test services, reached through a small
Unix-socket relay that the test closes and reopens: to migrate that is the
engine stopping and starting (the connection refused, then answering again),
without stopping the engine the other tests share.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from migrate import api

IMAGES = 7  # one per plugin of the example app, and the orchestrator's


class Relay:
    """Forwards connections from `path` to the real engine's socket until closed."""

    def __init__(self, path: Path, target: str) -> None:
        self.path, self.target = path, target
        self.connections: list[socket.socket] = []
        self.server: socket.socket | None = None

    def start(self) -> None:
        self.path.unlink(missing_ok=True)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(self.path))
        server.listen(16)
        self.server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return  # closed
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.target)
            self.connections += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        """The engine is gone: no new connections, and the open ones are cut."""
        if self.server is not None:
            self.server.close()
            self.server = None
        self.path.unlink(missing_ok=True)
        for connection in self.connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        self.connections.clear()


def images_done(project: Path) -> int:
    path = project / ".migrate" / "state.db"
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=30) as db:
        try:
            row = db.execute(
                "SELECT count(*) FROM steps WHERE action='images' AND status='done'"
            ).fetchone()
        except sqlite3.OperationalError:
            return 0
    return int(row[0])


def test_engine_stops_mid_apply_then_apply_completes(
    image_project: Path, docker_client: Any, tmp_path: Path
) -> None:
    real = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")
    relay = Relay(tmp_path / "engine.sock", real)
    relay.start()
    env = {**os.environ, "DOCKER_HOST": f"unix://{relay.path}"}
    argv = [
        sys.executable, "-m", "migrate", "-C", str(image_project), "apply", "--phase", "2",
        "--only", "containerize-services", "--force", "--yes",
    ]  # fmt: skip
    process = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while images_done(image_project) < 1:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the apply did not reach its second image: {process.communicate()[1]}")
        time.sleep(0.01)
    relay.stop()
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    assert "containerize-services" in stderr  # the error names the task
    assert "Traceback" not in stderr
    assert images_done(image_project) < IMAGES

    relay.start()  # the engine is back
    try:
        again = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    finally:
        relay.stop()
    assert again.returncode == 0, again.stderr
    listed = api.images_list(image_project).images
    assert len(listed) == IMAGES and all(image.current for image in listed)
    assert images_done(image_project) == IMAGES
