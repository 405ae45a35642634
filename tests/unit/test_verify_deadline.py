"""The deadline of a check's commands (verify/hosts.py): the whole process group dies,
a remote command runs under the host's `timeout`, and no host's facts wait for another's."""

from __future__ import annotations

import functools
import os
import shlex
import subprocess
import threading
from pathlib import Path

import pytest

from migrate.verify import hosts


def _running(command: str) -> list[int]:
    """PIDs whose command line is exactly `command` (zombies do not count)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if b" ".join(a for a in argv if a).decode(errors="replace") == command and state != "Z":
            found.append(int(entry))
    return found


def test_a_local_command_past_its_deadline_dies_with_all_it_started() -> None:
    host = hosts.get_host("local://")
    # a background child in the same group, and a foreground one
    with hosts.deadline(1), pytest.raises(hosts.CommandTimedOut) as caught:
        host.run("sleep 611 & sleep 612; wait")
    assert str(caught.value) == "timed out after 1 s"
    assert caught.value.answered  # this machine: the host is fine, the command was slow
    assert _running("sleep 611") == [] and _running("sleep 612") == []
    # the host goes on; without a deadline nothing is bounded or wrapped
    assert host.run("echo after").stdout == "after\n"


def test_a_remote_command_runs_under_the_hosts_timeout() -> None:
    assert hosts._remote_command("echo hi") == "echo hi"  # no deadline: as testinfra runs it
    with hosts.deadline(0.5):
        wrapped = hosts._remote_command("sleep 613")
    assert "exec timeout -k 1 0." in wrapped and "/bin/sh -c 'sleep 613'" in wrapped
    # what the remote shell does with it, here: `timeout` ends it, with its exit code 124
    done = subprocess.run(["/bin/sh", "-c", wrapped], capture_output=True, timeout=60, check=False)
    assert done.returncode == 124 and _running("sleep 613") == []
    # a host without `timeout` still runs the command
    no_timeout = wrapped.replace("command -v timeout", "command -v migrate-no-such-tool")
    quick = no_timeout.replace(shlex.quote("sleep 613"), shlex.quote("echo ran"))
    done = subprocess.run(["/bin/sh", "-c", quick], capture_output=True, timeout=60, check=False)
    assert (done.returncode, done.stdout) == (0, b"ran\n")


def test_the_remote_client_is_killed_when_the_host_does_not_end_the_command() -> None:
    """A client whose host never answers (here: a local stand-in that ignores the wrapped
    command) is killed GRACE seconds after the deadline, and says the host did not answer."""
    backend = hosts.get_host("local://").backend
    run_local = functools.partial(hosts._run_local, backend, True)
    with hosts.deadline(0.2), pytest.raises(hosts.CommandTimedOut) as caught:
        run_local("sleep 614; : %s", "the command for the host")
    assert not caught.value.answered
    assert _running("sleep 614") == []


def test_testinfra_facts_have_no_class_wide_lock() -> None:
    import testinfra.host
    import testinfra.modules.service
    import testinfra.modules.systeminfo

    hosts.unshare_locks()
    hosts.unshare_locks()  # idempotent
    for cls, name in [
        (testinfra.host.Host, "has_command_v"),
        (testinfra.modules.systeminfo.SystemInfo, "sysinfo"),
        (testinfra.modules.service.SysvService, "_service_command"),
    ]:
        assert isinstance(vars(cls)[name], hosts._LockFree), (cls, name)
    assert hosts.get_host("local://").system_info.type == "linux"


def test_one_instance_computing_a_fact_does_not_hold_another() -> None:
    entered, release = threading.Event(), threading.Event()

    class Facts:
        def __init__(self, slow: bool) -> None:
            self.slow = slow

        def value(self) -> str:
            if self.slow:
                entered.set()
                release.wait(60)
            return "slow" if self.slow else "quick"

    Facts.value = hosts._LockFree(Facts.value, "value")  # type: ignore[assignment,method-assign]
    slow = threading.Thread(target=lambda: Facts(True).value, daemon=True)
    slow.start()
    assert entered.wait(60)
    quick = Facts(False)
    assert quick.value == "quick"  # while the slow one is still inside its own
    assert slow.is_alive()
    assert quick.value == "quick" and vars(quick)["value"] == "quick"  # cached
    release.set()
    slow.join(60)
