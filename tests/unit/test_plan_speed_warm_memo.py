"""A warm plan takes the images' tags and the generated files' content from the render
memo (issue 14: no build context assembled, no Jinja), and a stale entry never changes
an answer: every test compares with a plan made with no cache at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from migrate import api
from migrate.engine.change import Change
from migrate.engine.context import Context
from migrate.images import context as contexts
from migrate.project import open_context
from tests.unit.plan_speed import cache_dir_fixture, outcome, uncached  # noqa: F401  (autouse)


def _changes(project: Path) -> list[Change]:
    return list(api.plan(project).changes)


def test_a_warm_plan_assembles_no_context_renders_no_file_and_says_the_same(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = uncached(project, monkeypatch)
    assert outcome(project) == expected  # cold: fills the memo

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("assembled or rendered again although nothing changed")

    with monkeypatch.context() as patch:
        patch.setattr(contexts, "_assemble", refuse)
        patch.setattr(contexts, "_assemble_orchestrator", refuse)
        patch.setattr(Context, "render", refuse)
        assert outcome(project) == expected


def test_a_plugin_edited_with_the_same_size_and_mtime_gets_its_new_tag(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {c.resource: c.data.get("image") for c in _changes(project)}
    assert _changes(project) is not None  # warm: from the memo
    source = open_context(project).source_dir
    module = sorted((source / "plugins").glob("*/plugin.py"))[0]
    plugin = module.parent.name
    stat = module.stat()
    text = module.read_bytes()
    edited = text[:-1] + (b" " if text[-1:] != b" " else b"\n")  # one byte differs
    assert len(edited) == len(text) and edited != text
    module.write_bytes(edited)
    os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same mtime
    after = {c.resource: c.data.get("image") for c in _changes(project)}
    assert after[f"image:{plugin}"] != before[f"image:{plugin}"]
    assert outcome(project) == uncached(project, monkeypatch)


def test_a_generated_file_deleted_on_disk_is_planned_again(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [c for c in _changes(project) if c.action == "files" and "content" in c.data]
    assert files and all(c.op == "create" for c in files)
    for change in files:  # as apply writes them
        target = project / change.data["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(change.data["content"])
    ops = {c.resource: c.op for c in _changes(project) if c.action == "files"}
    assert all(ops[c.resource] == "noop" for c in files)
    assert outcome(project) == uncached(project, monkeypatch)
    gone = files[0]
    (project / gone.data["path"]).unlink()
    again = {c.resource: c for c in _changes(project) if c.action == "files"}
    assert again[gone.resource].op == "create"
    assert again[gone.resource].data["content"] == gone.data["content"]
    assert outcome(project) == uncached(project, monkeypatch)


def test_a_generated_file_edited_on_disk_shows_its_diff(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [c for c in _changes(project) if c.action == "files" and "content" in c.data]
    change = files[0]
    target = project / change.data["path"]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(change.data["content"] + "# edited\n")
    again = {c.resource: c for c in _changes(project) if c.action == "files"}
    assert again[change.resource].op == "update"
    assert "-# edited" in (again[change.resource].detail or "")
    assert outcome(project) == uncached(project, monkeypatch)
