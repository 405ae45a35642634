"""A stand-in for the Docker engine: a small HTTP server on a Unix socket.

The unit tests run without services, so no Docker engine answers them. What
migrate.images.engine asks a local engine without the Docker SDK (one bare HTTP/1.0
`GET` per connection: `/images/json?filters=…`, `/images/<ref>/json`) is answered here
instead. The real engine is tested in tests/integration/images/.

`engine_socket(monkeypatch)` points DOCKER_HOST at a fresh socket path (with no TLS, so
the engine is asked without the SDK) and nothing listens there until a test calls
`serve(answer)`. `answer(target)` gives the status, body and extra headers for a request
target; `canned(...)` answers every request alike, `knows(references)` answers
`GET /images/<ref>/json` with 200 or 404. A stand-in keeps each request line before it
answers, so once the client has its answer, `requests` holds its request.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import tempfile
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

DEADLINE = 10.0  # seconds: a bound on waiting, never a measurement

Answer = Callable[[str], tuple[str, bytes, str]]  # target -> (status, body, extra headers)


class EngineStandIn:
    """Answers each connection on `path` with `answer(target)`; keeps the request lines."""

    def __init__(self, path: Path, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[str] = []  # e.g. "GET /images/json?filters=… HTTP/1.0"
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return  # closed
            with connection:
                connection.settimeout(DEADLINE)
                data = b""
                with contextlib.suppress(OSError):
                    while b"\r\n\r\n" not in data:
                        chunk = connection.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                line = data.decode("latin-1").split("\r\n", 1)[0]
                if len(line.split(" ")) < 2:
                    continue  # no request: nothing to answer
                self.requests.append(line)  # before answering: see the module's docstring
                status, body, headers = self.answer(line.split(" ")[1])
                response = f"HTTP/1.0 {status}\r\nContent-Type: application/json\r\n{headers}\r\n"
                with contextlib.suppress(OSError):
                    connection.sendall(response.encode() + body)

    def targets(self) -> list[str]:
        """The request targets, in the order asked: `/images/<ref>/json`, …"""
        return [line.split(" ")[1] for line in self.requests]

    def filters(self) -> list[dict[str, Any]]:
        """The `filters` query parameter of each request, decoded."""
        found = []
        for target in self.targets():
            query = urllib.parse.urlsplit(target).query
            found.append(json.loads(urllib.parse.parse_qs(query)["filters"][0]))
        return found

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (Linux)
        self.server.close()
        self.thread.join(DEADLINE)


def canned(status: str, body: bytes, headers: str = "") -> Answer:
    """The same answer to every request (`headers`: extra lines, each ending in CRLF)."""
    return lambda target: (status, body, headers)


def knows(known: set[str]) -> Answer:
    """`GET /images/<ref>/json`: 200 with an image for a known reference, else 404."""

    def answer(target: str) -> tuple[str, bytes, str]:
        reference = urllib.parse.unquote(target.removeprefix("/images/").removesuffix("/json"))
        if reference in known:
            return "200 OK", b'{"Id": "sha256:1"}', ""
        return "404 Not Found", b'{"message": "no"}', ""

    return answer


def use_engine(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    """DOCKER_HOST=`host`, without TLS (with TLS the SDK is always used)."""
    monkeypatch.setenv("DOCKER_HOST", host)
    for name in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        monkeypatch.delenv(name, raising=False)


class EngineSocket:
    """The socket path DOCKER_HOST names, and the stand-ins served there."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stand_ins: list[EngineStandIn] = []

    def serve(self, answer: Answer) -> EngineStandIn:
        stand_in = EngineStandIn(self.path, answer)
        self.stand_ins.append(stand_in)
        return stand_in


@contextlib.contextmanager
def engine_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[EngineSocket]:
    """DOCKER_HOST at a new socket path; every stand-in served there is closed after."""
    directory = Path(tempfile.mkdtemp(prefix="engine-", dir="/tmp"))  # AF_UNIX paths are short
    where = EngineSocket(directory / "docker.sock")
    use_engine(monkeypatch, f"unix://{where.path}")
    try:
        yield where
    finally:
        for stand_in in where.stand_ins:
            stand_in.close()
        shutil.rmtree(directory, ignore_errors=True)
