from __future__ import annotations

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
