"""`compare` (the `equivalence` check after `apply`) replays several plugins at once and
starts every container first: the results are those of one plugin at a time, and every
container is removed, also when a plugin fails or Ctrl-C stops the replay mid-way.
Real containers on the Docker engine (host networking), the legacy side in a virtualenv."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from migrate import api
from migrate.compare import verbs
from migrate.compare.candidate import LABEL_COMPARE
from migrate.errors import UserError
from migrate.reporting import NullReporter
from tests.integration.images.conftest import (
    built_example,
    built_project,
    docker_client,
    project_name,
    wheelhouse,
)

__all__ = ["built_example", "built_project", "docker_client", "wheelhouse"]

PLUGINS = ["code_reviewer", "notifier", "planner", "web_researcher"]


def left_over(client: Any, project: Path) -> list[Any]:
    filters = {"label": [f"io.migrate.project={project_name(project)}", f"{LABEL_COMPARE}=1"]}
    return list(client.containers.list(all=True, filters=filters))


def _counts(result: verbs.CompareResult) -> list[tuple[str, str, int, int, int, int, list[str]]]:
    return [
        (p.plugin, p.image, p.replayed, p.equal, p.different, p.errors, p.noise)
        for p in result.plugins
    ]


def test_concurrent_replay_gives_what_one_at_a_time_gives(
    built_project: Path, docker_client: Any
) -> None:
    one = verbs.compare(built_project, PLUGINS, sample=20, jobs=1)
    many = verbs.compare(built_project, PLUGINS, sample=20, jobs=4)
    assert [p.plugin for p in many.plugins] == PLUGINS  # the order asked for
    assert _counts(many) == _counts(one)
    assert many.ok and all(p.replayed == 20 for p in many.plugins)
    assert left_over(docker_client, built_project) == []


class _InterruptOn(NullReporter):
    """Ctrl-C in the middle of one plugin's replay."""

    def __init__(self, plugin: str) -> None:
        self.key = f"compare {plugin}"

    def advance(self, key: str, amount: float = 1) -> None:
        if key == self.key:
            raise KeyboardInterrupt


def test_every_container_is_removed_after_ctrl_c(built_project: Path, docker_client: Any) -> None:
    """With one plugin at a time, Ctrl-C in the first leaves three containers started
    and never replayed: they go too."""
    with pytest.raises(KeyboardInterrupt):
        verbs.compare(built_project, PLUGINS, sample=5, jobs=1, reporter=_InterruptOn(PLUGINS[0]))
    assert left_over(docker_client, built_project) == []


def test_a_plugin_that_fails_stops_the_others_and_removes_every_container(
    built_project: Path, docker_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One plugin's legacy host cannot start (its Python exits at once): the comparison
    fails naming that plugin, and no container is left, replayed or not."""
    from migrate.compare import legacy

    real = legacy.venv_for

    def broken(plugin: Any, state_dir: Path) -> Path:
        return Path("/bin/false") if plugin.name == "notifier" else real(plugin, state_dir)

    monkeypatch.setattr(legacy, "venv_for", broken)
    with pytest.raises(UserError, match="'notifier'"):
        api.compare(built_project, PLUGINS, sample=20)
    assert left_over(docker_client, built_project) == []
