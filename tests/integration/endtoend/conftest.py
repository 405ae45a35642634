"""The end-to-end demo needs both real services: PostgreSQL and a Docker engine."""

from tests.integration.data.conftest import database_url, db_env, pg_server
from tests.integration.images.conftest import docker_client, image_project, wheelhouse

__all__ = ["database_url", "db_env", "docker_client", "image_project", "pg_server", "wheelhouse"]
