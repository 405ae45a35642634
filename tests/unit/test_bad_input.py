"""Bad input found by reading the CLI as a user: each gets a message, never a traceback."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from migrate import api
from migrate.cli.app import app
from migrate.errors import RoadmapError
from migrate.project import open_context
from migrate.roadmap import load_roadmap
from tests.conftest import EXAMPLE_APP, write

FILES_TASK = """
phases:
  - id: 1
    name: One
    tasks:
      - id: gen
        title: Generate
        action: files
        with:
          files:
            - {{template: {template}, path: {path}{extra}}}
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def roadmap(
    project: Path, template: str = "ci/gitlab-ci.yml.j2", path: str = "out.yml", extra: str = ""
) -> None:
    write(
        project / "phases" / "roadmap.yaml",
        FILES_TASK.format(template=template, path=path, extra=extra),
    )


def test_bad_project_name(tmp_path: Path) -> None:
    result = run(
        "-C", str(tmp_path / "x"), "init", "--source", str(EXAMPLE_APP), "--name", "Bad Name"
    )
    assert result.exit_code == 1
    assert "'Bad Name' cannot be the project name" in result.stderr and "--name" in result.stderr
    assert "internal error" not in result.output


def test_init_without_source_in_a_relative_project_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(EXAMPLE_APP, tmp_path / "a")
    monkeypatch.chdir(tmp_path)
    result = run("-C", "a", "init")
    assert result.exit_code == 0, result.output
    assert "path: ." in (tmp_path / "a" / "migrate.yaml").read_text()


def test_error_inside_a_user_template(project: Path) -> None:
    write(project / "templates" / "boom.j2", "{{ 1 / 0 }}")
    roadmap(project, template="boom.j2")
    result = run("-C", str(project), "plan", "-o", "json")
    assert result.exit_code == 1
    assert "template 'boom.j2' failed while rendering: ZeroDivisionError" in result.stderr
    assert '"error"' in result.stdout  # the JSON error document


def test_state_directory_in_the_way(project: Path) -> None:
    (project / ".migrate").write_text("not a directory")
    result = run("-C", str(project), "apply", "--phase", "1", "--only", "ci-cd-pipelines", "--yes")
    assert result.exit_code == 1
    assert "internal error" not in result.output
    assert ".migrate" in result.stderr


def test_missing_registry_renders_as_nothing(project: Path) -> None:
    write(project / "templates" / "reg.j2", "registry=[{{ target.registry }}]\n")
    roadmap(project, template="reg.j2", path='"{{ target.registry }}x.yml"')
    api.apply(project, 1)
    assert (project / "x.yml").read_text() == "registry=[]\n"


def test_existing_permissions_are_kept_without_mode(project: Path) -> None:
    roadmap(project)
    target = project / "out.yml"
    target.write_text("old\n")
    target.chmod(0o755)
    api.apply(project, 1)
    assert target.stat().st_mode & 0o777 == 0o755
    roadmap(project, extra=", mode: '0600'")
    api.apply(project, 1)
    assert target.stat().st_mode & 0o777 == 0o600


def test_unquoted_mode_is_explained(project: Path) -> None:
    roadmap(project, extra=", mode: 0755")
    load_roadmap(project / "phases" / "roadmap.yaml")  # `with:` is the registry's to check
    with pytest.raises(RoadmapError, match=r"quoted string, e\.g\. '0755'"):
        open_context(project)  # where the project is assembled


def test_path_that_is_a_directory(project: Path) -> None:
    (project / "out.yml").mkdir()
    roadmap(project)
    result = run("-C", str(project), "plan")
    assert result.exit_code == 1 and "out.yml is a directory" in result.stderr


def test_missing_colon_points_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "roadmap.yaml", "phases:\n  - id: 1\n    name One\n    tasks: []\n")
    with pytest.raises(RoadmapError) as caught:
        load_roadmap(path)
    assert caught.value.line == 3


def test_top_level_list(tmp_path: Path) -> None:
    path = write(tmp_path / "roadmap.yaml", "- id: 1\n")
    with pytest.raises(RoadmapError, match="expected a mapping"):
        load_roadmap(path)


def test_manual_tasks_are_applied_and_rolled_back_with_their_phase(project: Path) -> None:
    write(
        project / "phases" / "roadmap.yaml",
        FILES_TASK.format(template="ci/gitlab-ci.yml.j2", path="out.yml", extra="")
        + "      - {id: hand, title: By hand, action: manual}\n",
    )
    api.apply(project, 1)
    applied = {t.id: t.last_applied for t in api.status(project).phases[0].tasks}
    assert applied["gen"] and applied["hand"]
    api.rollback(project, 1)
    assert all(t.last_applied is None for t in api.status(project).phases[0].tasks)
    assert not os.path.exists(project / "out.yml")
