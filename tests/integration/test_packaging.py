"""A non-editable install carries templates/ and phases/ and runs the README demo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import EXAMPLE_APP, REPO


def test_wheel_contains_templates_and_roadmap(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(wheels),
            str(REPO),
        ],
        check=True,
    )
    [wheel] = list(wheels.glob("migrate_k8s_roadmap-*.whl"))  # the distribution's own name
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
    )
    assert (site / "migrate" / "_data" / "phases" / "roadmap.yaml").is_file()
    assert (site / "migrate" / "_data" / "templates" / "ci" / "github-actions.yml.j2").is_file()

    # the installed copy (first on the path) finds its own data, not the checkout's
    env = {**os.environ, "PYTHONPATH": str(site)}
    project = tmp_path / "demo"
    probe = subprocess.run(
        [sys.executable, "-c", "import migrate.resources as r; print(r.resource_path('phases'))"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert probe.stdout.strip() == str(site / "migrate" / "_data" / "phases")
    for args in (["init", "--source", str(EXAMPLE_APP)], ["plan", "--phase", "1"]):
        result = subprocess.run(
            [sys.executable, "-m", "migrate", "-C", str(project), *args],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
    assert "+ file:.github/workflows/migrate.yml" in result.stdout
