"""A no-op `images build` (issue 14): one question to the engine for every tag, then
nothing: no Docker SDK client, no build call, no wheelhouse, no context tar. And the
content hash stays exact: a changed file or mode still rebuilds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from migrate import api
from migrate.images import builder, engine, wheelhouse
from migrate.images.context import BuildContext
from tests.integration.images.conftest import BuiltExample

pytestmark = pytest.mark.integration

PLUGIN = "planner"


def built(project: Path) -> dict[str, bool]:
    result = api.images_build(project, [PLUGIN])
    assert not result.failures, [o.error for o in result.failures]
    return {o.name: o.built for o in result.images}


class Spy:
    """Records the calls of the functions it replaces; `forbid` ones fail the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.calls: list[str] = []

    def forbid(self, owner: object, name: str) -> None:
        def called(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            raise AssertionError(f"a no-op build called {name}")

        self.monkeypatch.setattr(owner, name, called)

    def count(self, owner: object, name: str) -> None:
        real: Callable[..., Any] = getattr(owner, name)

        def called(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return real(*args, **kwargs)

        self.monkeypatch.setattr(owner, name, called)


def test_a_noop_build_asks_the_engine_once_and_does_nothing_else(
    image_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import docker

    assert built(image_project) == {PLUGIN: True}
    spy = Spy(monkeypatch)
    for name in ("connect", "exists", "inspect", "build", "push", "ensure_base_image"):
        spy.forbid(engine, name)
    spy.forbid(engine, "python_environment")
    spy.forbid(builder, "python_environment")
    spy.forbid(wheelhouse, "resolve")
    spy.forbid(BuildContext, "tar")
    for name in ("__init__", "build", "inspect_image", "images", "version"):
        spy.forbid(docker.APIClient, name)
    spy.count(engine, "list_images")

    assert built(image_project) == {PLUGIN: False}
    assert spy.calls == ["list_images"]  # one call for every tag, and nothing else


def test_a_noop_build_never_imports_the_docker_sdk(
    built_example: BuiltExample, built_project: Path
) -> None:
    # built by the session's first build of this project (a copy of it, with the same name)
    [planner] = [i for i in built_example.document["images"] if i["plugin"] == PLUGIN]
    assert planner["built"] is True
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from migrate import api\n"
        f"result = api.images_build(Path({str(built_project)!r}), [{PLUGIN!r}])\n"
        "print(json.dumps({'built': [o.built for o in result.images],\n"
        "                  'docker': 'docker' in sys.modules}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"built": [False], "docker": False}


def test_a_changed_file_rebuilds_even_with_its_size_and_times_kept(built_project: Path) -> None:
    assert built(built_project) == {PLUGIN: False}  # the session's build: up to date
    source = built_project.parent / "agents-app" / "plugins" / PLUGIN / "planner.py"
    before = source.stat()
    text = source.read_text()
    changed = text.replace("e", "E", 1)
    assert changed != text and len(changed) == len(text)
    source.write_text(changed)  # same size; the times put back as they were
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert built(built_project) == {PLUGIN: True}
    assert built(built_project) == {PLUGIN: False}

    source.chmod(before.st_mode | 0o111)  # only the executable bit
    assert built(built_project) == {PLUGIN: True}
