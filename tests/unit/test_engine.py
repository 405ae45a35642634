"""The executor: journaling, resume after a failure, rollback from the journal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from migrate import api
from migrate.actions import registry
from migrate.engine.change import Change, Receipt
from migrate.errors import ActionError, RefusedError
from migrate.reporting import RecordingReporter
from migrate.state.journal import Journal
from tests.conftest import write

ROADMAP = """
phases:
  - id: 1
    name: One
    tasks:
      - id: generate
        title: Generate files
        action: files
        with:
          files:
            - template: ci/gitlab-ci.yml.j2
              path: .gitlab-ci.yml
            - template: dev/compose.yaml.j2
              path: deep/er/compose.yaml
      - id: count
        title: Counting
        action: manual
        needs: [generate]
  - id: 2
    name: Two
    tasks:
      - id: later
        title: Later
        action: manual
"""


class CountingAction:
    """Stands in for `manual`: three changes that the plan always calls pending, so
    only the journal can tell that one was made already."""

    kind: ClassVar[str] = "manual"
    Params: ClassVar[Any] = None

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.undone: list[str] = []
        self.fail_on: set[str] = set()

    def plan(self, ctx: Any, task: Any) -> list[Change]:
        return [
            Change(
                task=task.id,
                action="manual",
                op="create",
                resource=f"thing:{n}",
                summary=n,
                data={"n": n},
            )
            for n in ("r1", "r2", "r3")
        ]

    def prepare(self, ctx: Any, change: Change) -> Receipt:
        return {"n": change.data["n"], "prepared_in_call": len(self.calls)}

    def apply(self, ctx: Any, change: Change) -> Receipt:
        name = change.data["n"]
        self.calls.append(name)
        if name in self.fail_on:
            self.fail_on.discard(name)
            raise RuntimeError(f"{name} broke")
        return {"applied": name}

    def rollback(self, ctx: Any, receipt: Receipt) -> None:
        if receipt["n"] in self.fail_on:
            self.fail_on.discard(receipt["n"])
            raise RuntimeError("undo broke")
        self.undone.append(receipt["n"])


@pytest.fixture
def counting() -> Iterator[CountingAction]:
    action = CountingAction()
    with registry.override("manual", action):
        yield action


@pytest.fixture
def files_project(project: Path) -> Path:
    write(project / "phases" / "roadmap.yaml", ROADMAP)
    return project


def journal(project: Path) -> Journal:
    return Journal(project / ".migrate" / "state.db")


def test_apply_writes_journals_and_then_has_nothing_to_do(files_project: Path) -> None:
    reporter = RecordingReporter()
    result = api.apply(files_project, 1, only=["generate"], reporter=reporter)
    assert result.run is not None
    assert [t.task for t in result.run.tasks] == ["generate"]
    assert (files_project / ".gitlab-ci.yml").read_text().count("migrate ci") >= 1
    assert (
        "planner" in (files_project / "deep/er/compose.yaml").read_text()
    )  # inventory in templates
    steps = journal(files_project).steps()
    assert [(s.resource, s.status) for s in steps] == [
        ("file:.gitlab-ci.yml", "done"),
        ("file:deep/er/compose.yaml", "done"),
    ]
    assert ("done", "task:generate", None) in reporter.events
    again = api.plan(files_project, 1, only=["generate"])
    assert not again.has_changes
    assert [c.summary for c in again.changes] == ["up to date", "up to date"]
    assert api.apply(files_project, 1, only=["generate"]).run is None


def test_plan_shows_a_diff_for_an_edited_file(files_project: Path) -> None:
    api.apply(files_project, 1, only=["generate"])
    path = files_project / ".gitlab-ci.yml"
    path.write_text(path.read_text().replace("stage: migrate", "stage: deploy"))
    changes = api.plan(files_project, 1, only=["generate"]).changes
    assert [c.op for c in changes] == ["update", "noop"]
    assert "-  stage: deploy" in (changes[0].detail or "")
    assert "+  stage: migrate" in (changes[0].detail or "")


def test_resume_skips_changes_journaled_as_done(
    files_project: Path, counting: CountingAction
) -> None:
    counting.fail_on = {"r2"}
    with pytest.raises(ActionError, match="r2 broke") as caught:
        api.apply(files_project, 1, only=["count"])
    assert "run the same command again" in str(caught.value)
    assert counting.calls == ["r1", "r2"]

    result = api.apply(files_project, 1, only=["count"])
    assert counting.calls == ["r1", "r2", "r2", "r3"]  # r1 was not redone
    assert result.run is not None
    assert result.run.tasks[0].resumed == ["+ thing:r1: r1"]
    steps = journal(files_project).steps()
    assert [(s.resource, s.status) for s in steps] == [
        ("thing:r1", "done"),
        ("thing:r2", "done"),  # the failed step was taken over, not journaled twice
        ("thing:r3", "done"),
    ]
    # the receipt prepared before the first attempt is the one kept
    assert steps[1].receipt == {"n": "r2", "prepared_in_call": 1, "applied": "r2"}

    # once a run finished, the facts decide again: this plan says all three are pending
    api.apply(files_project, 1, only=["count"])
    assert counting.calls[-3:] == ["r1", "r2", "r3"]


def test_rollback_undoes_newest_first_and_resumes(
    files_project: Path, counting: CountingAction
) -> None:
    api.apply(files_project, 1, only=["count"])
    counting.fail_on = {"r2"}
    with pytest.raises(ActionError, match="undo broke"):
        api.rollback(files_project, 1)
    assert counting.undone == ["r3"]
    result = api.rollback(files_project)  # default: the last applied phase
    assert result is not None
    assert counting.undone == ["r3", "r2", "r1"]  # r3 was not undone twice
    assert {s.status for s in journal(files_project).steps()} == {"rolled_back"}
    with pytest.raises(Exception, match="nothing to roll back"):
        api.rollback(files_project, 1)


def test_rollback_of_files_restores_what_was_there(files_project: Path) -> None:
    existing = files_project / ".gitlab-ci.yml"
    existing.write_text("mine\n")
    api.apply(files_project, 1, only=["generate"])
    assert existing.read_text() != "mine\n"
    compose = files_project / "deep/er/compose.yaml"
    compose.write_text(compose.read_text() + "# edited after apply\n")
    reporter = RecordingReporter()
    api.rollback(files_project, 1, reporter=reporter)
    assert existing.read_text() == "mine\n"
    assert not (files_project / "deep").exists()  # directories apply created are gone too
    [warning] = reporter.warnings
    assert "edited after apply" in warning
    saved = list((files_project / ".migrate/backups/files/deep/er").iterdir())
    assert saved[0].read_text().endswith("# edited after apply\n")
    status = api.status(files_project)
    assert status.phases[0].tasks[0].last_applied is None


def test_rollback_works_from_the_journal_not_the_roadmap(files_project: Path) -> None:
    api.apply(files_project, 1, only=["generate"])
    write(
        files_project / "phases" / "roadmap.yaml",
        ROADMAP.replace("path: .gitlab-ci.yml", "path: other.yml"),
    )
    api.rollback(files_project, 1)
    assert not (files_project / ".gitlab-ci.yml").exists()
    assert not (files_project / "other.yml").exists()


def test_rollback_refuses_while_a_later_phase_is_applied(
    files_project: Path, counting: CountingAction
) -> None:
    api.apply(files_project, 1, only=["count"])
    api.apply(files_project, 2, force=True)
    with pytest.raises(RefusedError, match="phase 2 is applied after phase 1"):
        api.rollback(files_project, 1)
    assert api.rollback(files_project, 1, force=True) is not None


def test_gate_refuses_until_the_previous_phase_is_done(files_project: Path) -> None:
    with pytest.raises(RefusedError) as caught:
        api.apply(files_project, 2)
    assert "phase 1 is not done: 0 of 2 tasks verified" in str(caught.value)
    assert "migrate verify --phase 1" in str(caught.value)
    db = journal(files_project)
    db.mark_verified("generate", 1, True)
    db.mark_verified("count", 1, True)
    assert api.apply(files_project, 2).run is None  # manual: nothing to apply
    assert api.status(files_project).phases[0].done


def test_tasks_that_cannot_run_here_are_refused_before_anything_changes(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from migrate.infra import cluster

    monkeypatch.setattr(cluster, "pulumi_cli", lambda: None)
    with pytest.raises(cluster.InfraUnavailable, match="Pulumi CLI"):
        api.apply(project, 1, confirm=lambda plan: pytest.fail("must not ask"))
    assert not (project / ".github").exists()


def test_declined_confirmation_changes_nothing(files_project: Path) -> None:
    result = api.apply(files_project, 1, only=["generate"], confirm=lambda plan: False)
    assert not result.confirmed and result.run is None
    assert not (files_project / ".gitlab-ci.yml").exists()


def test_plan_leaves_no_trace(project: Path) -> None:
    api.plan(project)
    api.status(project)
    assert not (project / ".migrate").exists()


def test_apply_failure_in_json_keeps_the_task_and_the_hint(
    files_project: Path, counting: CountingAction
) -> None:
    """`--output json` of a failed apply is the ActionError's fields, not only its text."""
    import json

    from typer.testing import CliRunner

    from migrate.cli.app import app

    counting.fail_on = {"r2"}
    result = CliRunner().invoke(
        app, ["-C", str(files_project), "apply", "--phase", "1", "--yes", "--output", "json"]
    )
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["version"] == 1
    assert document["task"] == "count"
    assert "r2 broke" in document["error"]
    assert "run the same command again" in document["hint"]


def test_rollback_errors_name_their_task(
    files_project: Path, counting: CountingAction, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A UserError raised while undoing names the task whose step failed, as apply's do."""
    from migrate.errors import UserError

    api.apply(files_project, 1, only=["count"])

    def refuse(self: Any, ctx: Any, receipt: Receipt) -> None:
        raise UserError("the backup is gone", hint="restore it from elsewhere")

    monkeypatch.setattr(CountingAction, "rollback", refuse)
    with pytest.raises(ActionError) as caught:
        api.rollback(files_project, 1)
    assert caught.value.task == "count"
    assert "undoing thing:r3: the backup is gone" in caught.value.message
    assert caught.value.hint is not None and caught.value.hint.startswith("restore it")
