"""kill -9 of `apply` and `rollback` of phase 2 at several points, then run again.

Phase 2's data and images tasks on the example application, with a real
PostgreSQL and a real Docker engine: whatever the moment of the kill, running
the same command again completes with exact data, every image present and
each change journaled once.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from migrate import api
from tests.integration.data.conftest import query

IMAGES = 7  # one per plugin of the example app, and the orchestrator's

TASKS = ["--only", "containerize-services", "--only", "database-migration"]
EXTRA_FILES, EXTRA_LINES = 12, 4000
RECORDS = 5384 + EXTRA_FILES * EXTRA_LINES  # the example's records, plus the big dataset


def add_big_dataset(project: Path) -> None:
    """Enough data that a kill can land in the middle of the load."""
    data = project.parent / "agents-app" / "data" / "bulk"
    data.mkdir()
    for index in range(EXTRA_FILES):
        with (data / f"part-{index:02d}.jsonl").open("w") as handle:
            for line in range(EXTRA_LINES):
                handle.write(f'{{"file": {index}, "line": {line}, "pad": "{"x" * 200}"}}\n')


def journal(project: Path, statement: str) -> list[tuple[Any, ...]]:
    path = project / ".migrate" / "state.db"
    if not path.exists():
        return []
    with sqlite3.connect(path, timeout=30) as db:
        try:
            return db.execute(statement).fetchall()
        except sqlite3.OperationalError:  # the tables are not created yet
            return []


def done(project: Path, action: str) -> int:
    rows = journal(
        project, f"SELECT count(*) FROM steps WHERE action = '{action}' AND status = 'done'"
    )
    return int(rows[0][0]) if rows else 0


def kill_when(argv: list[str], condition: Callable[[], bool], what: str) -> None:
    """Run migrate, SIGKILL it as soon as `condition` holds (polled, with a deadline)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "migrate", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not condition():
            if process.poll() is not None:
                pytest.fail(f"migrate ended (exit {process.returncode}) before {what}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}")
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()


def loaded_files(url: str) -> int:
    try:
        return int(query(url, "SELECT count(*) FROM legacy._migrate_files")[0][0])
    except Exception:
        return 0


def assert_complete(project: Path, url: str, client: Any) -> None:
    assert query(url, "SELECT count(*) FROM legacy.bulk") == [(EXTRA_FILES * EXTRA_LINES,)]
    assert query(url, "SELECT sum(records) FROM legacy._migrate_files") == [(RECORDS,)]
    assert api.data_verify(project).ok
    images = api.images_list(project)
    assert len(images.images) == IMAGES and all(i.current for i in images.images)
    for image in images.images:
        client.images.get(image.image)  # raises when missing
    # each change journaled once: a change retried after the kill reuses its step
    keys = journal(
        project,
        "SELECT change_key, count(*) FROM steps WHERE status != 'rolled_back' GROUP BY 1",
    )
    assert keys and all(count == 1 for _, count in keys), keys
    assert done(project, "images") == IMAGES and done(project, "data") == 8


@pytest.mark.parametrize("moment", ["during image builds", "between tasks", "during the load"])
def test_kill_apply_then_apply_again(
    image_project: Path, db_env: str, docker_client: Any, moment: str
) -> None:
    project = image_project
    add_big_dataset(project)
    argv = ["-C", str(project), "apply", "--phase", "2", *TASKS, "--force", "--yes"]
    condition = {
        "during image builds": lambda: done(project, "images") >= 1,
        "between tasks": lambda: done(project, "images") == IMAGES,
        "during the load": lambda: loaded_files(db_env) >= 3,
    }[moment]
    kill_when(argv, condition, moment)
    assert done(project, "images") + done(project, "data") < IMAGES + 8  # it was cut short

    result = subprocess.run(
        [sys.executable, "-m", "migrate", *argv], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert_complete(project, db_env, docker_client)


def test_kill_rollback_then_rollback_again(
    image_project: Path, db_env: str, docker_client: Any
) -> None:
    project = image_project
    add_big_dataset(project)
    api.apply(project, 2, only=TASKS[1::2], force=True)
    assert_complete(project, db_env, docker_client)

    def some_undone() -> bool:
        rows = journal(project, "SELECT count(*) FROM steps WHERE status = 'rolled_back'")
        return bool(rows and rows[0][0] >= 2)

    kill_when(["-C", str(project), "rollback", "--phase", "2", "--yes"], some_undone, "2 undone")
    left = journal(project, "SELECT count(*) FROM steps WHERE status = 'done'")[0][0]
    assert 0 < left < 14  # killed half-way

    result = subprocess.run(
        [sys.executable, "-m", "migrate", "-C", str(project), "rollback", "--phase", "2", "--yes"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert journal(project, "SELECT DISTINCT status FROM steps") == [("rolled_back",)]
    assert query(db_env, "SELECT count(*) FROM pg_namespace WHERE nspname = 'legacy'") == [(0,)]
    assert api.images_list(project).images == []  # every tag the builds made is gone
    status = api.status(project)
    assert all(t.last_applied is None for t in status.phases[1].tasks)
