"""`migrate compare`/`bench` for real: images built by the images verbs from the test base
image, run on the Docker engine with host networking; the legacy side in a virtualenv."""

from __future__ import annotations

from tests.integration.data.conftest import database_url, pg_server
from tests.integration.images.conftest import (
    built_example,
    built_project,
    docker_client,
    image_project,
    wheelhouse,
)
from tests.integration.runtime.conftest import redis_server, redis_url

__all__ = [
    "built_example",
    "built_project",
    "database_url",
    "docker_client",
    "image_project",
    "pg_server",
    "redis_server",
    "redis_url",
    "wheelhouse",
]
