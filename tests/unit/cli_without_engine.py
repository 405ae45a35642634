"""The CLI with no Docker engine, shared by test_images_cli.py and test_dev_cli.py.

A test module takes the fixture `no_engine` by importing `no_engine_fixture` (registered
under the name `no_engine`, so a test's `no_engine` argument does not shadow the import).
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner, Result

from migrate.cli.app import app
from tests.unit.engine_standin import use_engine

NO_ENGINE = "unix:///nonexistent/migrate-test/docker.sock"


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.fixture(name="no_engine")
def no_engine_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    """DOCKER_HOST at a socket that does not exist (no TLS): no engine answers."""
    use_engine(monkeypatch, NO_ENGINE)
