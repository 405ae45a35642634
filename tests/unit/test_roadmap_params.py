"""A task's `with:` block is checked once, where the project is assembled, after its
`{{ }}` are expanded; the errors still name the roadmap file, line and key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrate import api
from migrate.errors import RoadmapError, UserError
from migrate.project import open_context
from migrate.roadmap import load_roadmap
from tests.conftest import write
from tests.unit.test_roadmap import VALID, assert_names

DATA_TASK = """
      - id: load
        title: Load
        action: data
        with:
          verify_after_load: "{{ target.registry is none }}"
"""


def roadmap(project: Path, text: str) -> Path:
    return write(project / "phases" / "roadmap.yaml", text)


def failure(project: Path, text: str) -> RoadmapError:
    roadmap(project, text)
    with pytest.raises(RoadmapError) as caught:
        open_context(project)
    return caught.value


def test_files_action_parameters_are_checked(project: Path) -> None:
    exc = failure(project, VALID.replace("path: .gitlab-ci.yml", "path: ../outside.yml"))
    assert_names(exc, 18, "phases[0].tasks[1].with.files[0].path", "inside the project")
    exc = failure(
        project, VALID.replace("              path: .gitlab-ci.yml\n", "              dest: x\n")
    )
    assert "phases[0].tasks[1].with.files[0]" in str(exc)
    assert "dest" in str(exc) and "allowed here: template, secrets, path, mode" in str(exc)


def test_a_variable_that_leads_out_of_the_project_fails_once_with_its_line(
    project: Path,
) -> None:
    """`{{ source.path }}` is an absolute path here: the raw text looked like a path inside
    the project, so the load passed it and only the files action failed on it."""
    text = VALID.replace("path: .gitlab-ci.yml", 'path: "{{ source.path }}/ci.yml"')
    load_roadmap(roadmap(project, text))  # the roadmap alone knows no action: it loads
    exc = failure(project, text)
    assert_names(exc, 18, "phases[0].tasks[1].with.files[0].path", "inside the project")
    assert "agents-app/ci.yml" in str(exc)  # the value as expanded (an absolute path)
    with pytest.raises(RoadmapError) as caught:  # plan stops at the same place, not later
        api.plan(project, checks=False)
    assert (caught.value.line, caught.value.key) == (exc.line, exc.key)


def test_a_variable_in_a_typed_field_is_checked_after_expansion(project: Path) -> None:
    """A `{{ }}` that renders to a boolean was refused at load as text; now it passes,
    and the action sees the value the check saw."""
    text = VALID.replace("  - id: 2\n", DATA_TASK.lstrip("\n") + "  - id: 2\n")
    roadmap(project, text)
    ctx = open_context(project)
    assert ctx.task_params["load"].verify_after_load is True  # no target.registry here
    bad = text.replace("{{ target.registry is none }}", "{{ project }}")
    exc = failure(project, bad)
    assert_names(exc, 23, "phases[0].tasks[2].with.verify_after_load", "boolean")


def test_an_undefined_variable_names_its_line(project: Path) -> None:
    roadmap(project, VALID.replace("path: .gitlab-ci.yml", 'path: "{{ target.nope }}"'))
    with pytest.raises(UserError) as caught:
        open_context(project)
    exc = caught.value
    assert exc.line == 18 and exc.key == "phases[0].tasks[1].with.files[0].path", str(exc)
    assert "nope" in str(exc)


def test_a_plan_validates_each_rendered_tasks_with_block_once(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The renderer, the roadmap's options and the action read the parameters validated at
    assembly; none validates the expanded `with:` again (issue 15, item 9)."""
    from collections import Counter
    from typing import Any

    from migrate.manifests.components import InfraParams, ManifestsParams

    seen: Counter[str] = Counter()
    for model in (ManifestsParams, InfraParams):
        original = model.model_validate.__func__  # type: ignore[attr-defined]

        def counting(cls: Any, obj: Any, *args: Any, _original: Any = original, **kw: Any) -> Any:
            seen[cls.__name__] += 1
            return _original(cls, obj, *args, **kw)

        monkeypatch.setattr(model, "model_validate", classmethod(counting))
    ctx = open_context(project)
    rendered = [t for _, t in ctx.roadmap.tasks() if t.action in ("manifests", "infra")]
    at_assembly = sum(seen.values())
    assert at_assembly == len(rendered)  # once each, where the project is assembled
    api.plan(project)  # opens its own context: once more each, and nothing else
    assert sum(seen.values()) == 2 * len(rendered)
