"""The candidate: the plugin's image in a container that compare/bench start and remove.

Host networking, listening on 127.0.0.1 at a free port (no bridge needed, and
nothing reaches it from outside). Labelled `io.migrate.project=<project>` and
`io.migrate.compare=1`; removed when the block ends, whatever ends it (a
failure, Ctrl-C). A container that exits, or answers with an error, gives the
container's own message (its JSON `error`, else its log's last line), never a
traceback of migrate.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from migrate.compare.legacy import Answer

if TYPE_CHECKING:
    from docker import APIClient

LABEL_PROJECT = "io.migrate.project"
LABEL_COMPARE = "io.migrate.compare"
START_TIMEOUT = 60.0  # seconds for /healthz to answer 200
READY_TIMEOUT = 15.0  # seconds for /readyz to answer 200 once alive
REQUEST_TIMEOUT = 60.0
_POLL = 0.05


_given: set[int] = set()  # ports free_port() handed out in this process
_given_lock = threading.Lock()
_removing = threading.Lock()


def free_port() -> int:
    """A port free on 127.0.0.1 now, and not handed out before by this process (candidates
    start concurrently: two must not be given the same one)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        with _given_lock:
            if port not in _given:
                _given.add(port)
                return port


@dataclass
class Candidate:
    """A running container of one plugin's image; `problem` is set when it cannot serve."""

    client: APIClient
    container: str
    image: str
    plugin: str
    port: int
    problem: str = ""  # why it cannot answer (it exited, it is not ready)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    _conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        conn = self._conn
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
            self._conn = conn
        return conn

    def invoke(self, payload: dict[str, Any]) -> Answer:
        """POST /invoke; an error answer or no answer becomes Answer(ok=False, the reason)."""
        if self.problem:
            return Answer(False, error=self.problem)
        body = json.dumps(payload).encode()
        for attempt in (1, 2):  # a keep-alive connection the server closed: once more
            conn = self._connection()
            try:
                conn.request("POST", "/invoke", body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                text = response.read().decode("utf-8", "replace")
                status = response.status
                break
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self._conn = None
                gone = self._settle()
                if gone:
                    self.problem = gone
                    return Answer(False, error=gone)
                if attempt == 2:
                    return Answer(False, error=f"no answer from {self.url}/invoke: {exc}")
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if 200 <= status <= 299 and document is not None:
            return Answer(True, document)
        if isinstance(document, dict) and document.get("error"):
            # the container runs with MIGRATE_DEBUG_ERRORS=1: the plugin's own error
            return Answer(False, error=str(document.get("detail") or document["error"]))
        return Answer(False, error=f"HTTP {status}: {text.strip()[:300]}")

    def exited(self) -> str:
        """'' while the container runs, else what it said as it exited."""
        from docker.errors import NotFound

        try:
            info = self.client.inspect_container(self.container)
        except NotFound:
            return "the container is gone"
        state = info.get("State") or {}
        if state.get("Running"):
            return ""
        return f"the container exited with code {state.get('ExitCode')}: {self.log_tail()}"

    def _settle(self, seconds: float = 5.0) -> str:
        """After a dropped connection: what the container said if it exits within
        `seconds` (the engine reports the exit a moment after the socket closes), else ''."""
        deadline = time.monotonic() + seconds
        while True:
            gone = self.exited()
            if gone or time.monotonic() > deadline:
                return gone
            if _get(self.port, "/healthz") is not None:
                return ""  # it still answers: the connection alone was lost
            time.sleep(_POLL)  # poll interval, bounded by the deadline

    def log_tail(self, lines: int = 20) -> str:
        from docker.errors import APIError

        try:
            raw = self.client.logs(self.container, stdout=True, stderr=True, tail=lines)
        except APIError:
            return "(no log)"
        return _last_words(raw.decode("utf-8", "replace"))

    def ready(self) -> str:
        """Wait until it serves (`problem` says why not): '' when ready."""
        self.problem = _wait(self)
        return self.problem

    def close(self) -> None:
        conn = self._conn
        if conn is not None:
            conn.close()
            self._conn = None

    _removed: bool = False

    def remove(self) -> None:
        """Close the connection and remove the container (once; a second call does
        nothing)."""
        from docker.errors import APIError

        self.close()
        with _removing:
            if self._removed:
                return
            self._removed = True
        with contextlib.suppress(APIError):
            self.client.remove_container(self.container, force=True)


def _last_words(log: str) -> str:
    """The line of a log that says why: a JSON log line's `error`, else the last line."""
    lines = [line.strip() for line in log.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and document.get("error"):
            return f"{document.get('message') or 'error'}: {document['error']}"[:500]
    return lines[-1][:500] if lines else "(no log)"


def _get(port: int, path: str) -> tuple[int, str] | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


@contextlib.contextmanager
def running(
    client: APIClient,
    image: str,
    plugin: str,
    project: str,
    labels: dict[str, str] | None = None,
) -> Iterator[Candidate]:
    """The image running as a service on 127.0.0.1; removed when the block ends."""
    with started(client, image, plugin, project, labels) as candidate:
        candidate.problem = _wait(candidate)
        yield candidate


@contextlib.contextmanager
def started(
    client: APIClient,
    image: str,
    plugin: str,
    project: str,
    labels: dict[str, str] | None = None,
) -> Iterator[Candidate]:
    """The image's container, started but not yet waited for (`ready()` does); removed
    when the block ends."""
    candidate = start(client, image, plugin, project, labels)
    try:
        yield candidate
    finally:
        candidate.remove()


def start(
    client: APIClient,
    image: str,
    plugin: str,
    project: str,
    labels: dict[str, str] | None = None,
) -> Candidate:
    """The image's container, created and started, not waited for: the caller removes it
    (`remove()`), whatever happens."""
    port = free_port()
    container = client.create_container(
        image,
        # the plugin's exception text comes back in the answer only with
        # MIGRATE_DEBUG_ERRORS=1: compare shows it (this container is compare's own, on
        # 127.0.0.1, removed after the replay; deployed services keep the default)
        environment={
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "MIGRATE_ROLE": "service",
            "MIGRATE_DEBUG_ERRORS": "1",
        },
        labels={LABEL_PROJECT: project, LABEL_COMPARE: "1", **(labels or {})},
        host_config=client.create_host_config(network_mode="host"),
    )
    candidate = Candidate(client, str(container["Id"]), image, plugin, port)
    try:
        client.start(candidate.container)
    except BaseException:
        candidate.remove()
        raise
    return candidate


def _wait(candidate: Candidate) -> str:
    """'' once /healthz and /readyz answer 200, else why not."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        answer = _get(candidate.port, "/healthz")
        if answer is not None and answer[0] == 200:
            break
        gone = candidate.exited()
        if gone:
            return gone
        if time.monotonic() > deadline:
            return f"the container did not answer /healthz within {START_TIMEOUT:g} s: " + (
                candidate.log_tail()
            )
        time.sleep(_POLL)  # poll interval, bounded by the deadline
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        answer = _get(candidate.port, "/readyz")
        if answer is not None and answer[0] == 200:
            return ""
        if time.monotonic() > deadline or candidate.exited():
            why = answer[1] if answer is not None else "no answer"
            with contextlib.suppress(ValueError):
                reasons = json.loads(why).get("reasons")
                if reasons:
                    why = "; ".join(map(str, reasons))
            return candidate.exited() or f"the container is not ready: {why}"
        time.sleep(_POLL)
