"""Turning a check's `host` spec into a testinfra host that cannot hang for ever, nor
hold up another host.

testinfra's backends wait for their commands without a limit. Here every command a
check runs has the check's deadline (`deadline()`, per thread):
- it starts in a session and process group of its own, and the whole group is killed
  when the deadline passes (`sh -c`, what it started, the `docker exec` or ssh client);
- on a host that is not this machine (docker, ssh, kubectl, ...) it runs under
  `timeout` (coreutils or busybox, when the host has one), so the remote process dies
  too: a killed `docker exec` or ssh client leaves its command running otherwise. The
  client gets `GRACE` seconds more, so a host that answers says so itself.
A command that overruns raises `CommandTimedOut`: "timed out after S s".

testinfra caches per-host facts (`Host.has_command_v`, `SystemInfo.sysinfo`, ...)
with `functools.cached_property`, whose lock on Python 3.11 belongs to the class, so
one host that hangs while computing a fact holds every other host's threads.
`unshare_locks()` swaps those for a cache without a lock (what 3.12 does).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from migrate.errors import MigrateError

# seconds ssh waits for a TCP connection; the runner's per-check deadline bounds the rest
CONNECT_TIMEOUT = 10
# seconds the local client of a remote host gets past the deadline, for the remote
# `timeout` to end the command and the host to say so
GRACE = 1.0
_SSH = ("ssh", "safe-ssh", "paramiko")
# exit codes of `timeout`: the command got its signal (TERM, then KILL after -k)
_TIMED_OUT = (124, 137)


class CommandTimedOut(MigrateError):
    """A command of a check did not finish by the check's deadline (and was killed)."""

    def __init__(self, seconds: float, command: str, answered: bool) -> None:
        self.seconds = seconds
        self.command = command
        # True: the host itself ended the command (or it is this machine); False: the
        # client to a remote host had to be killed, the host did not answer
        self.answered = answered
        super().__init__(f"timed out after {seconds:g} s")


class _Deadline(threading.local):
    at: float | None = None
    seconds: float = 0.0


_deadline = _Deadline()


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """The commands this thread runs through a host from `get_host` end within `seconds`."""
    before = (_deadline.at, _deadline.seconds)
    _deadline.at, _deadline.seconds = time.monotonic() + seconds, seconds
    try:
        yield
    finally:
        _deadline.at, _deadline.seconds = before


def _remaining() -> float | None:
    return None if _deadline.at is None else _deadline.at - time.monotonic()


def scheme(spec: str) -> str:
    return spec.partition("://")[0]


def is_local(spec: str) -> bool:
    return scheme(spec) == "local"


def get_host(spec: str) -> Any:
    """The testinfra host of `spec`, with a connect timeout and no prompts for ssh, whose
    commands keep the calling thread's `deadline()`."""
    import testinfra

    kwargs: dict[str, Any] = {}
    if scheme(spec) in _SSH and "timeout=" not in spec:
        kwargs["timeout"] = CONNECT_TIMEOUT
    if scheme(spec) in ("ssh", "safe-ssh") and "ssh_extra_args" not in spec:
        kwargs["ssh_extra_args"] = "-o BatchMode=yes"
    host = testinfra.get_host(spec, **kwargs)
    _bound(host.backend, remote=not is_local(spec))
    return host


def _bound(backend: Any, remote: bool) -> None:
    """Give `backend` (once) commands that end by the deadline: see the module's doc."""
    if getattr(backend, "_migrate_bounded", False):
        return
    backend._migrate_bounded = True
    backend.run_local = functools.partial(_run_local, backend, remote)


def _remote_command(inner: str) -> str:
    """`inner` under the host's `timeout`, when the thread has a deadline."""
    left = _remaining()
    if left is None:
        return inner
    quoted = shlex.quote(inner)
    limit = f"{max(left, 0.1):.3f}"
    return (
        f"if command -v timeout >/dev/null 2>&1; then exec timeout -k 1 {limit} /bin/sh -c "
        f"{quoted}; else exec /bin/sh -c {quoted}; fi"
    )


def _run_local(backend: Any, remote: bool, command: str, *args: str) -> Any:
    """testinfra's `run_local`, in a process group of its own, killed at the deadline.

    Every remote backend (docker, podman, ssh, kubectl, lxc, ...) passes the command it
    runs on the host as the last argument: that one goes under the host's `timeout`."""
    if remote and args:
        args = (*args[:-1], _remote_command(args[-1]))
    line = backend.quote(command, *args)
    left = _remaining()
    seconds = _deadline.seconds
    process = subprocess.Popen(
        backend.encode(line),
        shell=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(
            timeout=None if left is None else max(left, 0.0) + (GRACE if remote else 0.0)
        )
    except subprocess.TimeoutExpired:
        kill_group(process)
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        raise CommandTimedOut(seconds, line, answered=not remote) from None
    left = _remaining()
    if remote and left is not None and left <= 0.05 and process.returncode in _TIMED_OUT:
        raise CommandTimedOut(seconds, line, answered=True)  # the host's `timeout` ended it
    return backend.result(process.returncode, backend.encode(line), stdout, stderr)


def kill_group(process: subprocess.Popen[Any], settle: float = 1.0) -> None:
    """SIGKILL the process group `process` leads (started with `start_new_session`), reap
    it, and wait up to `settle` seconds for the rest of the group to be gone: a signal
    is delivered asynchronously, so a member may still run for a moment after kill()."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    until = time.monotonic() + settle
    while time.monotonic() < until and _group_alive(process.pid):
        time.sleep(0.01)  # polling for the kernel to finish the kill, bounded by `settle`


def _group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs. Zombies do not count: an orphan's
    is reaped by PID 1 when it gets to it, which need not be soon."""
    try:
        entries = os.listdir("/proc")
    except OSError:  # no procfs: any member, zombies included
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # after "(comm)": state, ppid, pgrp
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


class _LockFree:
    """`functools.cached_property` without the class-wide lock of Python 3.11: two
    threads may compute a value once each, no thread waits for another host."""

    def __init__(self, func: Callable[[Any], Any], name: str) -> None:
        self.func = func
        self.attrname = name
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.attrname = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        cache = instance.__dict__
        if self.attrname in cache:
            return cache[self.attrname]
        value = self.func(instance)
        cache[self.attrname] = value
        return value


def unshare_locks() -> None:
    """Replace the locking `cached_property`s of testinfra's host and modules (idempotent)."""
    import importlib
    import inspect

    import testinfra.host
    import testinfra.modules

    classes: list[type] = [testinfra.host.Host]
    for classpath in testinfra.modules.modules.values():
        module_name, _, _ = classpath.partition(":")
        with contextlib.suppress(ImportError):
            module = importlib.import_module(f"testinfra.modules.{module_name}")
            classes += [c for _, c in inspect.getmembers(module, inspect.isclass)
                        if c.__module__ == module.__name__]  # fmt: skip
    for cls in classes:
        for name, value in list(vars(cls).items()):
            if isinstance(value, functools.cached_property) and hasattr(value, "lock"):
                setattr(cls, name, _LockFree(value.func, name))


_MODULES = ("file", "socket", "service", "process", "package", "system_info")


def preload(specs: list[str]) -> None:
    """Import testinfra's backends and modules, and make the hosts, in this thread.

    testinfra imports them lazily on first use; CPython 3.11 can fail
    ("AST constructor recursion depth mismatch") when several threads import
    at once, so the runner does it here before its thread pool starts. It also takes the
    class-wide locks out of testinfra's cached facts (`unshare_locks`).
    """
    import importlib
    import warnings

    import testinfra.backend
    import testinfra.modules

    unshare_locks()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for spec in specs:
            classpath = testinfra.backend.BACKENDS.get(scheme(spec))
            if classpath:
                importlib.import_module(classpath.rsplit(".", 1)[0])
            with contextlib.suppress(Exception):  # the check says why, when it runs
                get_host(spec)
        for name in _MODULES:
            testinfra.modules.get_module_class(name)


_MARKER = "migrate-host-answers"


def probe(spec: str, timeout: float | None = None) -> str | None:
    """None when the host of `spec` runs a command and answers (within `timeout` seconds
    when given); else why not, as a sentence.

    Run once per host before its checks: a docker CLI that cannot reach its container
    exits 1 too, and must never be taken for the checked command's own exit code.
    """
    if is_local(spec):
        return None
    try:
        with deadline(timeout) if timeout is not None else contextlib.nullcontext():
            result = get_host(spec).run(f"echo {_MARKER}")
    except CommandTimedOut as exc:
        return f"{spec} did not answer within {exc.seconds:g} s"
    except Exception as exc:  # a spec testinfra cannot parse, a backend that raises
        detail = exc.args[0] if exc.args else None
        stderr = getattr(detail, "stderr", None)
        why = _last_line(stderr if isinstance(stderr, str) else str(exc)) or type(exc).__name__
        return f"{spec} did not answer: {why}"
    if _MARKER in (result.stdout or ""):
        return None
    why = _last_line(result.stderr or "") or _last_line(result.stdout or "")
    return explain(spec, result.rc, why)


def explain(spec: str, rc: int, why: str) -> str:
    """Why the host of `spec` did not run a command, from the client's exit code and stderr."""
    low = why.lower()
    if scheme(spec) in ("docker", "podman"):
        tool = scheme(spec)
        if rc == 127 and ("not found" in low or not why):
            return f"{spec} cannot be reached: no {tool} CLI on this machine"
        if "no such container" in low:
            return f"{spec}: no such container"
        if "is not running" in low:
            return f"{spec} is not running"
        if "is paused" in low:
            return f"{spec} is paused"
        if "cannot connect" in low or "daemon" in low or "connect" in low:
            return f"{spec}: no {tool.capitalize()} engine answers: {why}"
    return f"{spec} did not answer: {why or f'exit code {rc}'}"


def _last_line(text: str, limit: int = 160) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[-1] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."
