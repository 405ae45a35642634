"""Turning a check's `host` spec into a testinfra host that cannot hang for ever.

testinfra's backends wait for their commands without a limit; what bounds
them here is each backend's own connect timeout (ssh's ConnectTimeout, no
password prompts) and the runner's deadline per check.
"""

from __future__ import annotations

from typing import Any

# seconds ssh waits for a TCP connection; the runner's per-check deadline bounds the rest
CONNECT_TIMEOUT = 10
_SSH = ("ssh", "safe-ssh", "paramiko")


def scheme(spec: str) -> str:
    return spec.partition("://")[0]


def is_local(spec: str) -> bool:
    return scheme(spec) == "local"


def get_host(spec: str) -> Any:
    """The testinfra host of `spec`, with a connect timeout and no prompts for ssh."""
    import testinfra

    kwargs: dict[str, Any] = {}
    if scheme(spec) in _SSH and "timeout=" not in spec:
        kwargs["timeout"] = CONNECT_TIMEOUT
    if scheme(spec) in ("ssh", "safe-ssh") and "ssh_extra_args" not in spec:
        kwargs["ssh_extra_args"] = "-o BatchMode=yes"
    return testinfra.get_host(spec, **kwargs)


_MODULES = ("file", "socket", "service", "process", "package", "system_info")


def preload(specs: list[str]) -> None:
    """Import testinfra's backends and modules, and make the hosts, in this thread.

    testinfra imports them lazily on first use; CPython 3.11 can fail
    ("AST constructor recursion depth mismatch") when several threads import
    at once, so the runner does it here before its thread pool starts.
    """
    import contextlib
    import importlib
    import warnings

    import testinfra.backend
    import testinfra.modules

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


def probe(spec: str) -> str | None:
    """None when the host of `spec` runs a command and answers; else why not, as a sentence.

    Run once per host before its checks: a docker CLI that cannot reach its container
    exits 1 too, and must never be taken for the checked command's own exit code.
    """
    if is_local(spec):
        return None
    try:
        result = get_host(spec).run(f"echo {_MARKER}")
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
