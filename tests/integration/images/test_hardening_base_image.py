"""Issue 13, item 15: a base image the engine lacks and cannot pull is named by `apply`'s
preflight, before it asks anything; the base image comes from `--base-image`, then
MIGRATE_BASE_IMAGE, then target.base_image. No test here pulls: the engine's pull is
replaced by one that fails, as it does on a machine with no registry access."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from migrate.cli.app import app
from tests.integration.images.conftest import BASE_IMAGE, set_target

ABSENT = "migrate-test/absent-base:never"
APPLY = ("apply", "--phase", "2", "--only", "containerize-services", "--force")


@pytest.fixture
def pulls(monkeypatch: pytest.MonkeyPatch, docker_client: Any) -> list[str]:
    """The references migrate tried to pull; each attempt fails without the network."""
    from docker.api.client import APIClient
    from docker.errors import APIError

    attempts: list[str] = []

    def refuse(self: APIClient, repository: str, tag: str | None = None, **kwargs: Any) -> Any:
        attempts.append(f"{repository}:{tag}")
        raise APIError("Get https://registry-1.docker.io/v2/: dial tcp: no route to host")

    monkeypatch.setattr(APIClient, "pull", refuse)
    monkeypatch.delenv("MIGRATE_BASE_IMAGE", raising=False)  # restored after the test
    return attempts


def run(project: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["-C", str(project), *args])


def test_preflight_names_a_missing_base_image_before_asking(
    project: Path, pulls: list[str]
) -> None:
    set_target(project, base_image=ABSENT)
    result = run(project, *APPLY)  # no --yes and no terminal: asking would fail
    assert result.exit_code == 1, result.output
    assert f"the base image {ABSENT} is not in the Docker engine and could not be pulled" in (
        result.stderr
    )
    assert "--base-image" in result.stderr and "MIGRATE_BASE_IMAGE" in result.stderr
    assert "pass --yes" not in result.stderr  # failed before the question
    assert pulls == [f"{ABSENT.rsplit(':', 1)[0]}:never"]
    assert not (project / ".migrate" / "images.json").exists()  # nothing was built


def test_flag_over_environment_over_config(
    project: Path, pulls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    set_target(project, base_image=ABSENT)
    monkeypatch.setenv("MIGRATE_BASE_IMAGE", "migrate-test/from-env:1")
    from_env = run(project, *APPLY)
    assert from_env.exit_code == 1 and "migrate-test/from-env:1" in from_env.stderr
    assert ABSENT not in from_env.stderr

    from_flag = run(project, *APPLY, "--base-image", "migrate-test/from-flag:2")
    assert from_flag.exit_code == 1 and "migrate-test/from-flag:2" in from_flag.stderr
    assert "from-env" not in from_flag.stderr

    monkeypatch.setenv("MIGRATE_BASE_IMAGE", "migrate-test/from-env:1")
    present = run(project, *APPLY, "--base-image", BASE_IMAGE)  # the engine has it
    assert present.exit_code == 1
    assert "pass --yes" in present.stderr  # preflight passed: it got to the question
    assert "base image" not in present.stderr
    assert pulls == ["migrate-test/from-env:1", "migrate-test/from-flag:2"]
