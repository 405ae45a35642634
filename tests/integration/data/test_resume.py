"""kill -9 in the middle of a load, then load again: exactly the source records, once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migrate import api
from tests.integration.data.conftest import query

FILES = 24
LINES = 4000


def big_app(root: Path) -> Path:
    data = root / "data" / "runs"
    data.mkdir(parents=True)
    for index in range(FILES):
        with (data / f"part-{index:02d}.jsonl").open("w") as handle:
            for line in range(LINES):
                handle.write(f'{{"file": {index}, "line": {line}, "pad": "{"x" * 200}"}}\n')
    return root


def loaded_files(url: str) -> int:
    try:
        return int(query(url, "SELECT count(*) FROM legacy._migrate_files")[0][0])
    except Exception:  # the table does not exist yet
        return 0


def wait_for(condition: object, process: subprocess.Popen[bytes], what: str) -> None:
    """Poll `condition` (a callable) until true; fail if the process ends first or after 60 s."""
    deadline = time.monotonic() + 60
    while not condition():  # type: ignore[operator]
        if process.poll() is not None:
            pytest.fail(f"the load ended (exit {process.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.mark.parametrize("kill_after_files", [0, 1, FILES // 2])
def test_kill_9_then_resume(tmp_path: Path, db_env: str, kill_after_files: int) -> None:
    project = tmp_path / "project"
    api.init(project, big_app(tmp_path / "app"))
    process = subprocess.Popen(
        [sys.executable, "-m", "migrate", "-C", str(project), "data", "load"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if kill_after_files == 0:  # as soon as the load has created its bookkeeping
            wait_for(
                lambda: (
                    query(db_env, "SELECT count(*) FROM pg_tables WHERE schemaname='legacy'")[0][0]
                    >= 2
                ),
                process,
                "the bookkeeping tables",
            )
        else:
            wait_for(
                lambda: loaded_files(db_env) >= kill_after_files,
                process,
                f"{kill_after_files} files",
            )
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert loaded_files(db_env) < FILES  # killed mid-way, not after the end

    result = api.data_load(project).datasets[0]
    assert result.records == FILES * LINES
    assert query(
        db_env, "SELECT count(*), count(DISTINCT (_source, _record)) FROM legacy.runs"
    ) == [(FILES * LINES, FILES * LINES)]
    assert query(db_env, "SELECT count(*), sum(records) FROM legacy._migrate_files") == [
        (FILES, FILES * LINES)
    ]
    per_file = query(db_env, "SELECT count(DISTINCT doc->>'file') FROM legacy.runs")
    assert per_file == [(FILES,)]
    assert api.data_verify(project).ok
