"""How long `migrate images build` takes on the example app: first build and no-op.

Every plugin's image and the orchestrator's. Peer, measured in the same run:
the Docker CLI (`DOCKER_BUILDKIT=0 docker build`, one image after another)
building the same contexts. A fresh project name changes the Dockerfile's
first LABEL line, so each "first" build misses the layer cache after FROM,
like a real first build; the no-op peer is the CLI
rebuilding with every layer cached, which is what a pipeline without content
tags would do. Needs an engine and the base image: `eval "$(bash scripts/test-services)"`.

Run: `python benchmarks/images_build.py [no-op runs]` (default 5). Removes what it builds.
"""

from __future__ import annotations

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
from migrate.images import engine, wheelhouse
from migrate.images.builder import ImageTarget, python_environment, select, selected_targets
from migrate.project import open_context

REPO = Path(__file__).resolve().parent.parent
BASE_IMAGE = os.environ.get("MIGRATE_TEST_BASE_IMAGE", "migrate-test/python:3.11-bookworm")


def new_project(root: Path, label: str) -> Path:
    project = root / label
    api.init(project, REPO / "examples" / "agents-app", name=f"bench-{secrets.token_hex(4)}")
    config = project / "migrate.yaml"
    data = yaml.safe_load(config.read_text())
    data["target"]["base_image"] = BASE_IMAGE
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return project


def migrate_build(project: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "migrate", "-C", str(project), "images", "build", "-o", "json"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def targets(project: Path) -> list[ImageTarget]:
    ctx = open_context(project)
    return selected_targets(ctx, select(ctx, None, None))


def resolve(project: Path, target: ImageTarget) -> list[Path]:
    assert target.context is not None
    ctx = open_context(project)
    environment = python_environment(ctx, engine.connect())
    return wheelhouse.resolve(
        target.subject, target.context.requirements, ctx.state_dir / "wheelhouse", environment
    )


def docker_cli_build(project: Path) -> float:
    """The same contexts (wheelhouse included) through `docker build -`, one at a time."""
    contexts = []
    for target in targets(project):
        assert target.context is not None
        contexts.append((target.image, target.context.tar(resolve(project, target))))
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    started = time.perf_counter()
    for image, tar in contexts:
        subprocess.run(
            ["docker", "build", "-q", "--network", "none", "-t", image, "-"],
            input=tar,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # the CLI's notice that the legacy builder is deprecated
            env=env,
        )
    return time.perf_counter() - started


def remove_images(project: Path) -> None:
    api.images_rollback(project)
    for image in api.images_list(project).images:
        subprocess.run(["docker", "rmi", "-f", image.image], check=False, capture_output=True)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    if not shutil.which("docker"):
        sys.exit("the docker CLI is needed for the peer measurement")
    root = Path(tempfile.mkdtemp(prefix="migrate-bench-"))
    ours, peer = new_project(root, "ours"), new_project(root, "peer")
    try:
        # the peer resolves the (shared) wheelhouse first, so neither pays PyPI twice
        (peer / ".migrate").mkdir(exist_ok=True)
        (ours / ".migrate").mkdir(exist_ok=True)
        (ours / ".migrate" / "wheelhouse").symlink_to(peer / ".migrate" / "wheelhouse")
        started = time.perf_counter()
        images = targets(peer)
        for target in images:
            resolve(peer, target)
        resolved = time.perf_counter() - started

        first_peer = docker_cli_build(peer)
        first_ours = migrate_build(ours)
        docker_cli_build(peer)  # warm: the peer's contexts and tar streams in the file cache
        noop_ours: list[float] = []
        noop_peer: list[float] = []
        for _ in range(runs):  # alternating, so a busy moment weighs on both
            noop_ours.append(migrate_build(ours))
            noop_peer.append(docker_cli_build(peer))
        plugins = len(images)
        print(f"{plugins} images; base image {BASE_IMAGE}; {runs} no-op runs (median)")
        print(f"resolve requirements (pip wheel, once) {resolved:6.2f} s")
        print(
            f"first build   migrate {first_ours:6.2f} s   docker CLI {first_peer:6.2f} s   "
            f"ratio {first_ours / first_peer:4.2f}x"
        )
        ours_noop, peer_noop = statistics.median(noop_ours), statistics.median(noop_peer)
        print(
            f"no-op build   migrate {ours_noop:6.2f} s   docker CLI (cached) {peer_noop:6.2f} s   "
            f"ratio {ours_noop / peer_noop:4.2f}x   ({ours_noop / plugins * 1000:.0f} ms an image, "
            "process start included)"
        )
    finally:
        remove_images(ours)
        remove_images(peer)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
