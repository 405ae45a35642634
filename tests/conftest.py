from __future__ import annotations

import copy
import os
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from migrate import api

if TYPE_CHECKING:
    from migrate.manifests.model import PhaseManifests

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_APP = REPO / "examples" / "agents-app"


@pytest.fixture(autouse=True, scope="session")
def _plan_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """`plan`'s cache (migrate/state/cache.py) in the run's temporary directory, not in
    the user's ~/.cache (test_plan_cache.py gives each of its tests its own)."""
    before = os.environ.get("MIGRATE_CACHE_DIR")
    os.environ["MIGRATE_CACHE_DIR"] = str(tmp_path_factory.getbasetemp() / "plan-cache")
    yield
    if before is None:
        os.environ.pop("MIGRATE_CACHE_DIR", None)
    else:
        os.environ["MIGRATE_CACHE_DIR"] = before


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


@pytest.fixture(scope="session")
def shared_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project initialised once per session on the example application, for tests
    that only read it (render it, write elsewhere); a test that edits its files, its
    templates or its state takes `project`."""
    root = tmp_path_factory.mktemp("shared")
    shutil.copytree(EXAMPLE_APP, root / "agents-app")
    api.init(root / "project", root / "agents-app")
    return root / "project"


@pytest.fixture(scope="session")
def _example_render_once(shared_project: Path) -> list[PhaseManifests]:
    from migrate.manifests.render import render_project
    from migrate.project import open_context

    return render_project(open_context(shared_project))


@pytest.fixture
def example_render(_example_render_once: list[PhaseManifests]) -> list[PhaseManifests]:
    """Every phase of `shared_project`, rendered once per session; each test gets its
    own copy, so one that changes an object does not change it for the next."""
    return copy.deepcopy(_example_render_once)


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
