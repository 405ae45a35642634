"""`docker_container` and `docker://` against a real container of the test services'
engine; `postgres_table` against a real PostgreSQL with the project's settings."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migrate import api
from tests.integration.data.conftest import database_url, db_env, pg_server, query
from tests.integration.images.conftest import BASE_IMAGE, TEST_LABEL, docker_client
from tests.integration.verify.conftest import TIMEOUT, set_roadmap

__all__ = ["database_url", "db_env", "docker_client", "pg_server"]


@pytest.fixture
def container(docker_client: Any) -> Iterator[str]:
    """A running container of the base image with no network, removed afterwards."""
    name = f"migrate-verify-{secrets.token_hex(4)}"
    box = docker_client.containers.run(
        BASE_IMAGE,
        ["sleep", "infinity"],
        name=name,
        detach=True,
        network_mode="none",
        labels={TEST_LABEL: name},
    )
    try:
        yield name
    finally:
        box.remove(force=True)


def test_docker_checks_against_a_real_container(project: Path, container: str) -> None:
    host = f"docker://{container}"
    set_roadmap(
        project,
        {
            "id": "in-docker",
            "checks": [
                {"name": "running", "docker_container": {"name": container}},
                {"name": "stopped", "docker_container": {"name": container, "running": False}},
                {"name": "absent", "docker_container": {"name": container + "-nope"}},
                {"name": "os-release", "host": host, "file": {"path": "/etc/os-release",
                                                              "contains": "bookworm"}},
                {"name": "python", "host": host, "command": {"run": "python3 --version",
                                                             "stdout_contains": "Python 3"}},
                {"name": "python3 pkg", "host": host, "package": {"name": "python3"}},
                {"name": "missing", "host": host, "file": {"path": "/migrate/nothing"}},
            ],
        },
    )  # fmt: skip
    result = {c.name: c for c in api.verify(project, timeout=TIMEOUT).checks}
    assert {n for n, c in result.items() if c.passed} == {
        "running", "os-release", "python", "python3 pkg"
    }  # fmt: skip
    assert (
        result["stopped"].message
        == f"expected container {container} to be stopped, found it running"
    )
    assert result["absent"].message.endswith("found no such container")
    assert result["missing"].message == "expected /migrate/nothing to exist, found nothing there"


def test_postgres_table_with_the_project_database(project: Path, db_env: str) -> None:
    query(db_env, "CREATE SCHEMA legacy")
    query(db_env, "CREATE TABLE legacy.runs (id int)")
    query(db_env, "INSERT INTO legacy.runs VALUES (1), (2)")
    set_roadmap(
        project,
        {
            "id": "data",
            "checks": [
                {"name": "two", "postgres_table": {"table": "{{ target.schema }}.runs",
                                                   "min_rows": 2}},
                {"name": "three", "postgres_table": {"table": "legacy.runs", "min_rows": 3}},
                {"name": "absent", "postgres_table": {"table": "legacy.nothing"}},
            ],
        },
    )  # fmt: skip
    result = {c.name: c for c in api.verify(project, timeout=TIMEOUT).checks}
    assert result["two"].passed, result["two"]
    assert result["three"].message == "expected at least 3 rows in legacy.runs, found 2"
    assert result["absent"].message == "expected table legacy.nothing, found no such table"


def test_postgres_table_with_no_database_says_so(project: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("MIGRATE_DATABASE_URL", raising=False)
    set_roadmap(project, {"id": "data", "checks": [{"postgres_table": {"table": "legacy.x"}}]})
    (check,) = api.verify(project, timeout=TIMEOUT).checks
    assert not check.passed and "found no database" in check.message
