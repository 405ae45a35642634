"""Ctrl-C during `data load` (issue 13, item 11): it stops, rolls back the file in
flight, says what was kept, and the next `data load` resumes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migrate import api
from tests.integration.data.cli import environment
from tests.integration.data.conftest import query
from tests.integration.data.test_resume import loaded_files

FILES = 60
LINES = 4000


def big_app(root: Path) -> Path:
    data = root / "data" / "runs"
    data.mkdir(parents=True)
    for index in range(FILES):
        with (data / f"part-{index:02d}.jsonl").open("w") as handle:
            for line in range(LINES):
                handle.write(f'{{"file": {index}, "line": {line}, "pad": "{"x" * 200}"}}\n')
    return root


def test_ctrl_c_stops_the_load_and_the_next_load_resumes(tmp_path: Path, db_env: str) -> None:
    database_url = db_env
    project = tmp_path / "project"
    api.init(project, big_app(tmp_path / "app"))
    process = subprocess.Popen(
        [sys.executable, "-m", "migrate", "-C", str(project), "data", "load"],
        env=environment(database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while loaded_files(database_url) < 2:
            if process.poll() is not None:
                pytest.fail(f"the load ended (exit {process.returncode}) before 2 files")
            if time.monotonic() > deadline:
                pytest.fail("timed out waiting for 2 files")
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = f"exit {process.returncode}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    assert process.returncode == 130, text
    kept = loaded_files(database_url)
    assert kept < FILES, text  # it stopped: it did not run to the end
    assert f"interrupted: {kept} file(s) loaded and kept ({kept * LINES} rows" in stderr, text
    assert "Run `migrate data load` again to resume" in stderr, text
    assert "internal error" not in stderr and "Traceback" not in stderr, text
    # every file kept is whole; the one in flight left nothing behind
    per_file = query(database_url, "SELECT _source, count(*) FROM legacy.runs GROUP BY 1")
    assert len(per_file) == kept and all(count == LINES for _, count in per_file), per_file

    result = api.data_load(project).datasets[0]
    assert (result.skipped_files, result.records) == (kept, FILES * LINES)
    assert api.data_verify(project).ok
