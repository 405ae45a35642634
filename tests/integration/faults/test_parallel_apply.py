"""`apply` builds a task's images in parallel, and a kill -9 in the middle of that
parallel work is resumed by the next apply, the journal exact.

Real Docker engine, the example application's seven images (six plugins and the
orchestrator). Parallelism is read from the order of events, never from times: a
recording reporter sees one image's build start before another's ended, and the
journal holds two steps `started` at once.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path
from typing import Any

from migrate import api
from migrate.reporting import RecordingReporter
from tests.integration.faults.test_apply_faults import IMAGES, done, journal, kill_when

TASK = "containerize-services"


def overlapping(events: list[tuple[str, str, object]]) -> list[tuple[str, str]]:
    """Pairs of images (a, b) whose build windows overlap: b started before a ended."""
    start = {key: i for i, (kind, key, _) in enumerate(events) if kind == "start"}
    end = {key: i for i, (kind, key, _) in enumerate(events) if kind == "done"}
    images = [key for key in start if key.startswith("image:") or key == "orchestrator-image"]
    return [
        (a, b)
        for a, b in itertools.permutations(images, 2)
        if start[a] < start[b] < end.get(a, len(events))
    ]


def assert_exact(project: Path, client: Any) -> None:
    """Every image there, each change journaled once and done, each tag made once."""
    keys = journal(
        project,
        "SELECT change_key, count(*) FROM steps WHERE status != 'rolled_back' GROUP BY 1",
    )
    assert len(keys) == IMAGES and all(count == 1 for _, count in keys), keys
    assert done(project, "images") == IMAGES
    assert journal(project, "SELECT count(*) FROM steps WHERE status != 'done'") == [(0,)]
    listed = api.images_list(project).images
    assert len(listed) == IMAGES and all(i.current for i in listed), listed
    tags = [i.image for i in listed]
    assert len(set(tags)) == IMAGES  # one tag per image, none twice
    repositories = [tag.rsplit(":", 1)[0] for tag in tags]
    assert len(set(repositories)) == IMAGES  # no image with a second (stale) tag
    for tag in tags:
        client.images.get(tag)  # raises when missing
    ledger = (project / ".migrate" / "images.json").read_text()
    assert all(ledger.count(f'"{tag}"') == 1 for tag in tags), ledger  # recorded once each


def test_apply_builds_a_tasks_images_in_parallel(image_project: Path, docker_client: Any) -> None:
    project = image_project
    reporter = RecordingReporter()
    result = api.apply(project, 2, only=[TASK], force=True, reporter=reporter, jobs=2)
    assert result.run is not None
    [task] = result.run.tasks
    assert len(task.applied) == IMAGES and not task.resumed
    assert overlapping(reporter.events), reporter.events  # two builds under way at once
    assert_exact(project, docker_client)

    undone = api.rollback(project, 2)
    assert undone is not None and len(undone.undone) == IMAGES
    assert api.images_list(project).images == []  # the receipts name every tag apply made


def test_kill_during_parallel_builds_then_apply_again(
    image_project: Path, docker_client: Any
) -> None:
    project = image_project
    argv = ["-C", str(project), "apply", "--phase", "2", "--only", TASK, "--force", "--yes"]

    def two_building() -> bool:
        rows = journal(
            project, "SELECT count(*) FROM steps WHERE action='images' AND status='started'"
        )
        return bool(rows and rows[0][0] >= 2)

    kill_when([*argv, "--jobs", "2"], two_building, "two image builds under way at once")
    assert done(project, "images") < IMAGES  # it was cut short, in the middle of two builds
    left_open = journal(project, "SELECT count(*) FROM steps WHERE status='started'")
    assert left_open[0][0] >= 2, left_open

    result = subprocess.run(
        [sys.executable, "-m", "migrate", *argv, "--jobs", "2"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert_exact(project, docker_client)
