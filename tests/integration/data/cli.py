"""Running `migrate` as a user does: a separate process, its exit code, stdout, stderr."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from migrate import api
from tests.integration.data.conftest import make_app

# What a user without root's power over file permissions has: the test runs as root,
# and /root (where the interpreter lives) is closed to other users, so instead of
# another uid the process loses the two capabilities that let root read any file.
NO_DAC = "-dac_override,-dac_read_search"


def project_for(tmp_path: Path, files: dict[str, bytes | str]) -> Path:
    """A project on an application whose data files are added after `init`, as a user
    adds files later (and `init` reads some records to propose a replay corpus)."""
    app = tmp_path / "app"
    (app / "data").mkdir(parents=True)
    project = tmp_path / "project"
    api.init(project, app)
    make_app(app, files)
    return project


def environment(database_url: str) -> dict[str, str]:
    env = dict(os.environ, MIGRATE_DATABASE_URL=database_url, COLUMNS="400", NO_COLOR="1")
    return env


def migrate(
    project: Path, database_url: str, *args: str, unprivileged: bool = False, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "migrate", "-C", str(project), *args]
    if unprivileged:
        command = [*unprivileged_prefix(), *command]
    return subprocess.run(
        command,
        env=environment(database_url),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def unprivileged_prefix() -> list[str]:
    """A command prefix under which file permissions apply (root without
    CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH, or simply a non-root user)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv (util-linux) is not installed")
    probe = subprocess.run(
        [setpriv, f"--inh-caps={NO_DAC}", f"--bounding-set={NO_DAC}", "true"],
        capture_output=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot drop capabilities here: {probe.stderr.decode().strip()}")
    return [setpriv, f"--inh-caps={NO_DAC}", f"--bounding-set={NO_DAC}"]


def output(process: subprocess.CompletedProcess[str]) -> str:
    return f"exit {process.returncode}\nstdout:\n{process.stdout}\nstderr:\n{process.stderr}"
