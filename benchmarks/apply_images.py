"""`migrate apply` of the images task against `migrate images build` of the same images.

Both build every plugin's image and the orchestrator's of the example app, cold:
before each run every tag of the project is removed (with it the layers only it
used), so each run builds from the base image, with the same (resolved once,
shared) wheelhouse. `apply --phase 2 --only containerize-services --force --yes`
includes what apply does besides building: planning (context hashes, engine
lookups), the journal, and the task's checks afterwards (`migrate images list`, and
`equivalence`: 200 inputs per plugin through the legacy code twice and the image once;
they must pass); its own "seconds" of the task (the builds with their journaling) is
printed too. The warm-up makes what both keep per project: the wheelhouse, and the
legacy virtualenvs the equivalence check uses. The runs alternate, so
neither always comes first. Needs an engine and the base image:
`eval "$(bash scripts/test-services)"` (or `source /tmp/services.env`).

Run: `python benchmarks/apply_images.py [runs] [jobs]` (default 3 runs, default jobs).
Removes what it builds.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from migrate import api

REPO = Path(__file__).resolve().parent.parent
BASE_IMAGE = os.environ.get("MIGRATE_TEST_BASE_IMAGE", "migrate-test/python:3.11-bookworm")
TASK = "containerize-services"


def new_project(root: Path) -> Path:
    project = root / "project"
    api.init(project, REPO / "examples" / "agents-app", name=f"bench-{secrets.token_hex(4)}")
    config = project / "migrate.yaml"
    data = yaml.safe_load(config.read_text())
    data["target"]["base_image"] = BASE_IMAGE
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return project


def migrate(project: Path, *argv: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "migrate", "-C", str(project), *argv, "-o", "json"],
        check=False,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if result.returncode not in (0, 1):  # apply exits 1 when a check of the task fails
        sys.exit(f"migrate {' '.join(argv)} failed ({result.returncode}):\n{result.stderr}")
    return seconds, result.stdout


def images_build(project: Path, jobs: list[str]) -> float:
    seconds, _ = migrate(project, "images", "build", *jobs)
    return seconds


def apply(project: Path, jobs: list[str]) -> tuple[float, float]:
    """Wall time of the command, and the task's own seconds (from its JSON)."""
    argv = ["apply", "--phase", "2", "--only", TASK, "--force", "--yes", *jobs]
    seconds, stdout = migrate(project, *argv)
    document = json.loads(stdout)
    tasks = document.get("tasks") or []
    built = sum(len(t["applied"]) for t in tasks)
    if built == 0:
        sys.exit(f"apply built nothing: the tags were not removed?\n{stdout[:2000]}")
    checks = document.get("checks") or {}
    if not checks.get("passed"):  # a check that fails early would make apply look fast
        sys.exit(f"apply's checks did not pass:\n{json.dumps(checks, indent=1)[:3000]}")
    return seconds, float(tasks[0]["seconds"])


def legacy_environments(project: Path) -> float:
    """`migrate compare --sample 1`: makes the plugins' legacy virtualenvs (kept under
    .migrate/compare/venvs/, once per project and requirements, as the wheelhouse is) that
    the task's `equivalence` check replays through; the first apply would make them."""
    seconds, _ = migrate(project, "compare", "--sample", "1")
    return seconds


def remove_tags(project: Path) -> None:
    """Every image of the project (by label), tags and untagged leftovers: a cold cache."""
    import docker

    name = yaml.safe_load((project / "migrate.yaml").read_text())["project"]
    client = docker.from_env(timeout=600)
    label = {"label": f"io.migrate.project={name}"}
    for _ in range(10):
        left = client.images.list(all=True, filters=label)
        if not left:
            break
        for image in left:
            for tag in image.tags or [str(image.id)]:
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(tag, force=True)
    client.close()
    (project / ".migrate" / "images.json").unlink(missing_ok=True)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    jobs = ["--jobs", sys.argv[2]] if len(sys.argv) > 2 else []
    root = Path(tempfile.mkdtemp(prefix="migrate-bench-apply-"))
    project = new_project(root)
    try:
        started = time.perf_counter()
        images_build(project, jobs)  # resolves the wheelhouse once (PyPI), warms nothing else
        warmup = time.perf_counter() - started
        venvs = legacy_environments(project)
        builds: list[float] = []
        applies: list[tuple[float, float]] = []
        for run in range(runs):
            for which in ("build", "apply") if run % 2 == 0 else ("apply", "build"):
                remove_tags(project)
                if which == "build":
                    builds.append(images_build(project, jobs))
                else:
                    applies.append(apply(project, jobs))
        build = statistics.median(builds)
        wall = statistics.median(a[0] for a in applies)
        task = statistics.median(a[1] for a in applies)
        print(
            f"7 images, cold (tags removed before each run); base image {BASE_IMAGE}; "
            f"{runs} runs each (median); jobs {jobs[1] if jobs else 'default'}; "
            f"first build with wheelhouse {warmup:.2f} s; legacy virtualenvs {venvs:.2f} s"
        )
        print(f"images build                      {build:6.2f} s   {sorted(builds)}")
        print(
            f"apply {TASK} (command)  {wall:6.2f} s   ratio {wall / build:4.2f}x   "
            f"{sorted(round(a[0], 2) for a in applies)}"
        )
        print(f"apply {TASK} (the task)  {task:6.2f} s   ratio {task / build:4.2f}x")
        outside = statistics.median(a[0] - a[1] for a in applies)
        print(
            f"apply {TASK} outside the task (start, plan, preflight, journal, the task's "
            f"checks) {outside:6.2f} s = {outside / build:4.2f} of a build"
        )
    finally:
        remove_tags(project)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
