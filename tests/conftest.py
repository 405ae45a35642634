from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from migrate import api

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_APP = REPO / "examples" / "agents-app"


@pytest.fixture
def example_app(tmp_path: Path) -> Path:
    """A private copy of the example legacy application."""
    target = tmp_path / "agents-app"
    shutil.copytree(EXAMPLE_APP, target)
    return target


@pytest.fixture
def project(tmp_path: Path, example_app: Path) -> Path:
    """A project initialised on the example application."""
    directory = tmp_path / "project"
    api.init(directory, example_app)
    return directory


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def require_service(name: str, reason: str) -> None:
    """A test needs `name`, which is not there: skip it, or fail it in CI.

    CI sets MIGRATE_REQUIRE_SERVICES=1 so that a missing PostgreSQL or Docker
    engine fails the suite instead of passing it by skipping.
    """
    if os.environ.get("MIGRATE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{name} is required (MIGRATE_REQUIRE_SERVICES=1) but unavailable: {reason}")
    pytest.skip(f"{name} unavailable: {reason}")
