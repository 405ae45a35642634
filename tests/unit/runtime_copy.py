"""A private copy of src/migrate/runtime that the build contexts read instead, so a test
can edit the runtime without touching the source tree.

A test module takes the fixture `runtime_copy` by importing `runtime_copy_fixture`
(registered under the name `runtime_copy`, so a test's `runtime_copy` argument does not
shadow the import).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from migrate.images import context as contexts


@pytest.fixture(name="runtime_copy")
def runtime_copy_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of src/migrate/runtime that the contexts read instead."""
    copy = tmp_path / "runtime-copy"
    shutil.copytree(
        contexts.runtime_dir(), copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    monkeypatch.setattr(contexts, "runtime_dir", lambda: copy)
    return copy
