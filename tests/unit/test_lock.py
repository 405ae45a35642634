"""The project lock: a second process is refused at once; a killed holder never blocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from migrate.cli.app import app
from migrate.errors import LockError
from migrate.state.lock import ProjectLock

HOLDER = """
import sys, time
from pathlib import Path
from migrate.state.lock import ProjectLock
lock = ProjectLock(Path(sys.argv[1]), "apply --phase 2")
lock.acquire()
print("locked", flush=True)
sys.stdin.read()  # hold until the test closes stdin or kills us
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / ".migrate")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "locked"  # synchronise on the holder's word
    yield process
    process.kill()
    process.wait()


def test_second_process_is_refused_with_the_holder(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(LockError) as caught:
        ProjectLock(tmp_path / ".migrate", "rollback").acquire()
    text = str(caught.value)
    assert f"another migrate run holds the lock (pid {holder.pid}, since " in text
    assert "`migrate apply --phase 2`" in text


def test_killed_holder_does_not_block(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with ProjectLock(tmp_path / ".migrate", "apply") as lock:
        assert lock.path.read_text().startswith(f'{{"pid": {os.getpid()}')
    # released: it can be taken again at once
    ProjectLock(tmp_path / ".migrate", "apply").acquire()


def test_cli_apply_is_refused_while_locked(project: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(project / ".migrate")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "locked"
        result = CliRunner().invoke(
            app, ["-C", str(project), "apply", "--phase", "1", "--only", "ci-cd-pipelines", "--yes"]
        )
        assert result.exit_code == 1
        assert f"another migrate run holds the lock (pid {process.pid}" in result.stderr
        assert not (project / ".gitlab-ci.yml").exists()
    finally:
        process.kill()
        process.wait()


def test_removing_the_lock_file_does_not_release_the_lock(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    """`rm .migrate/lock` while a run holds it: a second run is still refused (issue 13)."""
    (tmp_path / ".migrate" / "lock").unlink()
    with pytest.raises(LockError) as caught:
        ProjectLock(tmp_path / ".migrate", "apply --phase 1").acquire()
    assert "another migrate run holds the lock" in str(caught.value)
    # replaced by a file of the same name: still refused
    (tmp_path / ".migrate" / "lock").write_text("{}")
    with pytest.raises(LockError):
        ProjectLock(tmp_path / ".migrate", "apply --phase 1").acquire()
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with ProjectLock(tmp_path / ".migrate", "apply") as lock:  # the holder's end frees it
        assert lock.path.read_text().startswith(f'{{"pid": {os.getpid()}')


@pytest.mark.parametrize("command", [["verify", "--phase", "1"], ["ci", "--phase", "1"]])
def test_verify_and_ci_record_results_only_under_the_lock(
    project: Path, command: list[str]
) -> None:
    """verify and ci write task status to the journal: while apply holds the lock they are
    refused, and record nothing (issue 15, item 4)."""
    from migrate.state.journal import Journal

    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(project / ".migrate")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "locked"
        result = CliRunner().invoke(app, ["-C", str(project), *command])
        assert result.exit_code == 1
        assert f"another migrate run holds the lock (pid {process.pid}" in result.stderr
    finally:
        process.kill()
        process.wait()
    states = Journal(project / ".migrate" / "state.db").task_states()
    assert all(state.verified_at is None for state in states.values())
