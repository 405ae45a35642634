"""`migrate.infra.stack` run through Pulumi's Automation API against a stand-in engine.

The `pulumi` on PATH in these tests is NOT Pulumi: it is the stand-in of
tests/unit/pulumi_standin.py, which records the CLI calls the Automation API
makes and answers in the CLI's shapes. So these tests hold which commands run,
in which order, with which passphrase; not what a real engine or cluster does.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migrate import api
from migrate.errors import MigrateError, UserError
from migrate.infra import stack
from migrate.infra.program import APPLIED_OUTPUT
from migrate.manifests import applied
from migrate.manifests.render import render_project
from migrate.project import open_context
from tests.unit.pulumi_standin import StandIn, install, listening_cluster


@pytest.fixture
def cluster_port() -> Iterator[int]:
    yield from listening_cluster()


@pytest.fixture
def engine(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cluster_port: int
) -> StandIn:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
        "contexts:\n- name: dev\n  context: {cluster: dev}\n"
        f"clusters:\n- name: dev\n  cluster: {{server: 'https://127.0.0.1:{cluster_port}'}}\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("MIGRATE_DATABASE_URL", raising=False)
    return install(tmp_path, monkeypatch)


def phase_records(project: Path, phase: int) -> list[dict[str, Any]]:
    (rendered,) = render_project(open_context(project), [phase])
    return [t.to_record() for t in rendered.tasks]


def test_up_preview_destroy_cancel(project: Path, engine: StandIn) -> None:
    ctx = open_context(project)
    records = phase_records(project, 1)
    result = stack.up(ctx, 1, records)
    assert result.stack == "project-phase1" and result.summary == {"create": 3}
    commands = engine.commands()
    assert commands.index("stack select") < commands.index("stack init") < commands.index("up")
    (up_call,) = engine.argvs("up")
    assert "--refresh" in up_call and "--exec-kind" in up_call
    assert any(a.startswith("--client=127.0.0.1:") for a in up_call)  # inline program
    config = engine.state()["stacks"]["project-phase1"]["config"]
    assert config[stack.CONFIG_KUBE_CONTEXT] == {"value": "dev", "secret": False}  # pinned
    assert (project / ".migrate" / ".gitignore").read_text().endswith("*\n")
    assert ".migrate/\n" in (project / ".gitignore").read_text()  # written by init

    preview = stack.preview(ctx, 1, records)
    assert preview is not None and preview.summary == {"same": 2, "create": 1}

    destroyed = stack.destroy(ctx, 1)
    commands = engine.commands()
    assert commands.index("stack export") < commands.index("destroy")
    assert destroyed.backup is not None
    backup = Path(destroyed.backup)
    assert backup.parent == project / ".migrate" / "pulumi" / "backups"
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600  # it holds secrets in plain text
    assert '"resources"' in backup.read_text()

    assert stack.cancel(ctx, 1).verb == "cancel"
    assert engine.commands()[-1] == "cancel"


def test_plan_creates_no_stack_workspace_or_passphrase(project: Path, engine: StandIn) -> None:
    ctx = open_context(project)
    assert stack.preview(ctx, 1, phase_records(project, 1)) is None
    assert not (project / ".migrate" / "pulumi").exists()
    assert "stack init" not in engine.commands()
    plan = api.plan(project, 1)
    summaries = [c.summary for p in plan.phases for t in p.tasks for c in t.changes]
    assert summaries and all("no Pulumi preview" in s for s in summaries if "objects" in s)
    assert not (project / ".migrate" / "pulumi").exists()
    assert "stack init" not in engine.commands()
    # the workspace exists (another phase was provisioned), this phase's stack does not
    stack.up(ctx, 1, phase_records(project, 1))
    assert stack.preview(ctx, 2, phase_records(project, 2)) is None
    assert engine.commands().count("stack init") == 1


def test_an_empty_passphrase_variable_does_not_win(
    project: Path, engine: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = open_context(project)
    stack.up(ctx, 1, phase_records(project, 1))
    generated = (project / ".migrate" / "pulumi" / "passphrase").read_text().strip()
    first = engine.calls()[-1]["env"]
    assert first["PULUMI_CONFIG_PASSPHRASE_FILE"].endswith("passphrase")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "")  # e.g. an unset CI secret
    stack.up(ctx, 1, phase_records(project, 1))  # the stand-in refuses a wrong passphrase
    assert engine.calls()[-1]["env"]["PULUMI_CONFIG_PASSPHRASE"] == generated


def test_passphrase_precedence(project: Path, tmp_path: Path) -> None:
    ctx = open_context(project)
    assert stack.passphrase_env(ctx, environ={"PULUMI_CONFIG_PASSPHRASE": "given"}) == {}
    given = tmp_path / "phrase"
    given.write_text("from-file\n")
    only_file = {"PULUMI_CONFIG_PASSPHRASE_FILE": str(given)}
    assert stack.passphrase_env(ctx, environ=only_file) == {}
    both = {**only_file, "PULUMI_CONFIG_PASSPHRASE": ""}
    assert stack.passphrase_env(ctx, environ=both) == {"PULUMI_CONFIG_PASSPHRASE": "from-file"}
    assert stack.passphrase_env(ctx, create=False, environ={}) is None
    assert not (project / ".migrate" / "pulumi").exists()
    generated = stack.passphrase_env(ctx, environ={})
    assert generated is not None and set(generated) == {"PULUMI_CONFIG_PASSPHRASE_FILE"}


def test_a_shared_backend_needs_an_explicit_passphrase_or_kms(project: Path) -> None:
    config = project / "migrate.yaml"
    text = config.read_text()
    config.write_text(text + "pulumi:\n  backend_url: s3://bucket/state\n")
    ctx = open_context(project)
    with pytest.raises(UserError, match="shared") as caught:
        stack.passphrase_env(ctx, environ={})
    assert "PULUMI_CONFIG_PASSPHRASE" in (caught.value.hint or "")
    assert stack.passphrase_env(ctx, environ={"PULUMI_CONFIG_PASSPHRASE": "x"}) == {}
    config.write_text(
        text + "pulumi:\n  backend_url: s3://bucket/state\n"
        "  secrets_provider: awskms://alias/migrate\n"
    )
    assert stack.passphrase_env(open_context(project), environ={}) == {}


def test_a_locked_stack_says_wait_or_cancel(project: Path, engine: StandIn) -> None:
    ctx = open_context(project)
    stack.up(ctx, 1, phase_records(project, 1))
    engine.edit_state(lambda s: s["stacks"]["project-phase1"].update(locked=True))
    with pytest.raises(stack.StackBusy) as caught:
        stack.up(ctx, 1, phase_records(project, 1))
    assert "another update of stack project-phase1 is in progress" in caught.value.message
    assert "migrate infra cancel --phase 1" in (caught.value.hint or "")
    stack.cancel(ctx, 1)
    stack.up(ctx, 1, phase_records(project, 1))  # the lock is gone


def test_pending_operations_are_cleared_and_the_update_retried(
    project: Path, engine: StandIn
) -> None:
    ctx = open_context(project)
    stack.up(ctx, 1, phase_records(project, 1))
    engine.fail("up", "error: the current deployment has 1 resource(s) with pending operations")
    stack.up(ctx, 1, phase_records(project, 1))
    (refresh,) = engine.argvs("refresh")
    assert "--clear-pending-creates" in refresh
    assert engine.commands().count("up") == 3  # first, the failed one, the retry


def test_the_stack_refuses_an_update_that_would_drop_unknown_tasks(
    project: Path, engine: StandIn
) -> None:
    """Another machine (or lost .migrate/ files): the stack exports a task this machine
    does not know as applied, so an `up` from here would delete it."""
    ctx = open_context(project)
    records = phase_records(project, 1)
    engine.exports({APPLIED_OUTPUT: {**stack.applied_state(records), "ghost": "0123"}})
    stack.up(ctx, 1, records)
    with pytest.raises(UserError, match=r"ghost \(in the stack, not in this machine's records\)"):
        stack.up(ctx, 1, records)
    assert engine.commands().count("up") == 1
    # a task being rolled back or applied is expected to change
    assert stack.disagreement({"a": "1"}, [], {"a"}) == []
    assert stack.disagreement({"a": "1"}, [], set()) == [
        "a (in the stack, not in this machine's records)"
    ]


def test_infra_up_is_journaled_resumes_after_a_failure_and_rolls_back(
    project: Path, engine: StandIn
) -> None:
    tasks = [r["task"] for r in phase_records(project, 1)]
    assert len(tasks) == 2
    engine.fail("up", "error: update failed: release fluent-bit: timed out", after=1)
    with pytest.raises(MigrateError, match="timed out"):
        api.infra(project, "up", 1)
    ctx = open_context(project)
    assert [r["task"] for r in applied.phase_records(ctx.state_dir, 1)] == tasks[:1]
    ups = engine.commands().count("up")
    result = api.infra(project, "up", 1)  # again: the first task is not redone
    assert result is not None and result.summary == {"tasks applied": 1}
    assert engine.commands().count("up") == ups + 1
    assert [r["task"] for r in applied.phase_records(ctx.state_dir, 1)] == tasks

    asked: list[list[str]] = []

    def confirm(phase: int, descriptions: list[str]) -> bool:
        asked.append(descriptions)
        return True

    before = len(engine.calls())
    undone = api.rollback(project, 1, confirm=confirm)
    assert undone is not None and len(undone.undone) == 2
    text = " ".join(asked[0])
    assert "kept (retained, not deleted): Namespace project (and every PVC in it)" in text
    # newest first: monitoring-stack is taken out with an `up` of the rest, then the last
    # task's removal destroys the stack; each after an export of the state
    undo = [c for c in engine.commands()[before:] if c in ("stack export", "up", "destroy")]
    assert undo == ["stack export", "up", "stack export", "destroy"]
    assert applied.phase_records(ctx.state_dir, 1) == []
    backups = list((project / ".migrate" / "pulumi" / "backups").glob("*-rollback.json"))
    assert len(backups) == 2


def test_the_database_url_is_kept_in_the_stack_config_as_a_secret(
    project: Path, engine: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "postgresql://app:s3cret-pw@db:5432/app"
    monkeypatch.setenv("MIGRATE_DATABASE_URL", url)
    stack.up(open_context(project), 1, phase_records(project, 1))
    config = engine.state()["stacks"]["project-phase1"]["config"]
    assert config[stack.CONFIG_DATABASE_URL] == {"value": url, "secret": True}
    for call in engine.calls():
        if "config" not in call["argv"]:
            assert "s3cret-pw" not in " ".join(call["argv"])


def test_a_moved_kube_context_is_refused(project: Path, engine: StandIn) -> None:
    ctx = open_context(project)
    stack.up(ctx, 1, phase_records(project, 1))
    engine.edit_state(
        lambda s: s["stacks"]["project-phase1"]["config"].update(
            {stack.CONFIG_KUBE_CONTEXT: {"value": "prod", "secret": False}}
        )
    )
    with pytest.raises(UserError, match="provisioned on kube context 'prod'"):
        stack.up(ctx, 1, phase_records(project, 1))
