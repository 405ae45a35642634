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
