"""The legacy side: the plugin's code in a virtualenv made from its requirements, on
this machine's Python, as the old host ran it.

The requirements are resolved into the wheelhouse `images build` uses (so both
sides install the same wheels), then installed offline into a virtualenv kept
under `.migrate/compare/venvs/<hash of Python and requirements>/`. Each
`LegacyProcess` is one such Python running `worker.py`: primary and secondary
are two processes (their own hash seeds, their own module state).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from migrate.errors import MigrateError, UserError
from migrate.inventory import Plugin

VENVS = Path("compare") / "venvs"
STARTUP_TIMEOUT = 60.0  # seconds for the worker to import the plugin
CALL_TIMEOUT = 60.0  # seconds one call may take
_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


class LegacyError(MigrateError):
    """The legacy worker could not be started or stopped answering."""


@dataclass(frozen=True)
class Answer:
    ok: bool
    output: Any = None
    error: str = ""

    @property
    def value(self) -> Any:
        """What is compared: the output, or the error as text."""
        return self.output if self.ok else {"error": self.error}


def venv_for(plugin: Plugin, state_dir: Path) -> Path:
    """The plugin's virtualenv (made on first use, then reused): its Python's path."""
    from migrate.images.context import requirements_of
    from migrate.images.wheelhouse import resolve

    requirements = requirements_of(plugin)
    key = hashlib.sha256(
        json.dumps([sys.version, sys.executable, sorted(requirements)]).encode()
    ).hexdigest()[:16]
    state_dir = state_dir.resolve()
    root = state_dir / VENVS / key
    python = root / "bin" / "python"
    with _guard:
        lock = _locks.setdefault(str(root), threading.Lock())
    with lock:
        if (root / ".complete").is_file():
            return python
        wheels = resolve(f"plugin {plugin.name}", requirements, state_dir / "wheelhouse")
        root.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root.parent))
        try:
            _run([_base_python(), "-m", "venv", "--without-pip", str(work)], plugin)
            if wheels:
                _run(
                    [
                        sys.executable, "-m", "pip", "--python", str(work / "bin" / "python"),
                        "install", "--no-index", "--no-deps", "--disable-pip-version-check",
                        "--no-input", "--quiet", *map(str, wheels),
                    ],
                    plugin,
                )  # fmt: skip
            (work / ".complete").write_text(json.dumps(requirements), encoding="utf-8")
            shutil.rmtree(root, ignore_errors=True)
            work.rename(root)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return python


def _base_python() -> str:
    """This machine's Python (the one under migrate's own virtualenv, if any)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return str(base)


def _run(command: list[str], plugin: Plugin) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise UserError(
            f"plugin {plugin.name!r}: cannot make its legacy virtualenv: " + " | ".join(why),
            file=plugin.path,
            hint="check the plugin's requirements (plugin.yaml, requirements.txt)",
        )


def _pump(stream: IO[str] | None, lines: queue.SimpleQueue[str]) -> None:
    """Each line of the worker's protocol output into `lines`, then '' at its end."""
    assert stream is not None
    with contextlib.suppress(OSError, ValueError):  # closed under the reader: the end
        for line in stream:
            lines.put(line)
    lines.put("")


class LegacyProcess:
    """One legacy host for one plugin: a worker process in the plugin's virtualenv."""

    def __init__(self, plugin: Plugin, python: Path, name: str, *, wait: bool = True) -> None:
        """Start the worker; `wait`: until it imported the plugin (else `wait_ready()`
        does, and the caller closes it whatever happens)."""
        self.plugin = plugin
        self.name = name
        module_file = plugin.module_file
        if module_file is None:
            raise UserError(
                f"plugin {plugin.name!r}: no module for entrypoint {plugin.entrypoint}",
                file=plugin.path,
                hint="fix `entrypoint` in its plugin.yaml",
            )
        function = plugin.entrypoint.partition(":")[2]
        worker = Path(__file__).with_name("worker.py")
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115  (closed by close())
        self._process = subprocess.Popen(
            [str(python), "-u", str(worker), str(module_file), function, str(plugin.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            encoding="utf-8",
            cwd=plugin.path,
            env=environment,
        )
        # one reader thread for the process's life: each answer line lands in `_lines`
        # ('' at the end of its output), read with a deadline
        self._lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        threading.Thread(
            target=_pump, args=(self._process.stdout, self._lines), daemon=True
        ).start()
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Until the worker imported the plugin; a LegacyError (the worker closed) when
        it cannot."""
        try:
            ready = self._read(STARTUP_TIMEOUT)
        except BaseException:
            self.close()
            raise
        if not ready.get("ready"):
            why = ready.get("error") or self._tail()
            self.close()
            raise LegacyError(
                f"plugin {self.plugin.name!r} does not import in its legacy environment: {why}"
            )

    def _tail(self) -> str:
        self._stderr.seek(0)
        lines = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else f"the worker exited ({self._process.poll()})"

    def _read(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            line = ""
        if not line:
            if self._process.poll() is not None:
                self._lines.put("")  # the end stays the end for a later read
            raise LegacyError(
                f"the legacy host of {self.plugin.name!r} ({self.name}) did not answer within "
                f"{timeout:g} s: {self._tail()}"
            )
        document: dict[str, Any] = json.loads(line)
        return document

    def _send(self, request: dict[str, Any]) -> None:
        stdin = self._process.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(request) + "\n")
            stdin.flush()
        except OSError:
            raise LegacyError(
                f"the legacy host of {self.plugin.name!r} ({self.name}) is gone: {self._tail()}"
            ) from None

    def _ask(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        self._send(request)
        return self._read(timeout)

    def call(self, payload: dict[str, Any]) -> Answer:
        self.send(payload)
        return self.receive()

    def send(self, payload: dict[str, Any]) -> None:
        """The first half of `call`: the worker starts on `payload` while the caller does
        something else; `receive()` then waits for its answer. One call at a time."""
        self._send({"op": "call", "input": payload})

    def receive(self) -> Answer:
        """The answer to the payload `send` gave."""
        document = self._read(CALL_TIMEOUT)
        if document.get("ok"):
            return Answer(True, document.get("output"))
        return Answer(False, error=str(document.get("error")))

    def bench(
        self, inputs: list[dict[str, Any]], concurrency: int, duration: float, limit: int
    ) -> dict[str, Any]:
        request = {
            "op": "bench",
            "inputs": inputs,
            "concurrency": concurrency,
            "duration": duration,
            "limit": limit,
        }
        return self._ask(request, duration + CALL_TIMEOUT + 60.0)

    def close(self) -> None:
        process = self._process
        if process.poll() is None:
            with contextlib.suppress(OSError):
                if process.stdin:
                    process.stdin.close()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        for stream in (process.stdout, process.stdin):
            with contextlib.suppress(OSError):
                if stream:
                    stream.close()
        self._stderr.close()

    def __enter__(self) -> LegacyProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
