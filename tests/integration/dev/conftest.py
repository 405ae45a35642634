"""`migrate dev` for real: the Docker engine with host networking, images built by the
images verbs from the test base image, the real redis-server (`--bus-url`) and the
embedded PostgreSQL (`--database-url`). Whatever a test starts is removed by label,
even when it fails."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from migrate.cli.app import app
from tests.integration.data.conftest import database_url, pg_server
from tests.integration.images.conftest import (
    built_example,
    built_project,
    docker_client,
    image_project,
    project_name,
    wheelhouse,
)
from tests.integration.runtime.conftest import redis_server, redis_url

__all__ = [
    "built_example",
    "built_project",
    "database_url",
    "dev_project",
    "docker_client",
    "image_project",
    "pg_server",
    "redis_server",
    "redis_url",
    "wheelhouse",
]


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def run_json(*args: str) -> dict[str, Any]:
    result = run(*args, "--output", "json")
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def dev_labels(project: str) -> dict[str, list[str]]:
    return {"label": [f"io.migrate.project={project}", "io.migrate.dev=1"]}


def dev_containers(client: Any, project: str) -> list[Any]:
    return list(client.containers.list(all=True, filters=dev_labels(project)))


def remove_dev(client: Any, project: str) -> None:
    import docker

    for container in dev_containers(client, project):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True, v=True)
    for network in client.networks.list(filters=dev_labels(project)):
        with contextlib.suppress(docker.errors.NotFound):
            network.remove()


@pytest.fixture
def dev_project(built_project: Path, docker_client: Any) -> Iterator[Path]:
    """A project on the example app (its app in dev_project.parent / "agents-app"), whose
    images are built already (`built_project`); its dev containers are removed after."""
    name = project_name(built_project)
    try:
        yield built_project
    finally:
        remove_dev(docker_client, name)
