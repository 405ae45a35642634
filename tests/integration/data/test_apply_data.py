"""Phase 2's database-migration task through `migrate apply` and `migrate rollback`."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrate import api
from tests.integration.data.conftest import query

TASK = ["database-migration"]


def schemas(url: str) -> list[tuple[str]]:
    return query(url, "SELECT nspname FROM pg_namespace WHERE nspname = 'legacy'")


def test_plan_apply_rollback(project: Path, db_env: str) -> None:
    changes = api.plan(project, 2, only=TASK).changes
    assert [c.op for c in changes] == ["create"] * 7
    assert "create table legacy.users (1 files, 35.4 KiB)" in [c.summary for c in changes]

    result = api.apply(project, 2, only=TASK, force=True)
    assert result.run is not None and len(result.run.tasks[0].applied) == 7
    assert query(db_env, "SELECT count(*) FROM legacy.agent_runs") == [(3000,)]
    assert [c.op for c in api.plan(project, 2, only=TASK).changes] == ["noop"] * 7
    assert not (project / ".migrate" / "backups").exists()  # nothing existed before: no backup

    api.rollback(project, 2)
    assert schemas(db_env) == []  # the load created the schema, so it is gone again


def test_plan_reads_no_record(project: Path, db_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """plan works from sizes and hashes against _migrate_files: it parses nothing
    (issue 15, item 3), so planning does not cost as much as the data."""
    from migrate.data import records

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("plan parsed a record")

    monkeypatch.setattr(records, "read", refuse)
    changes = api.plan(project, 2, only=TASK).changes
    assert [c.op for c in changes] == ["create"] * 7


def test_a_load_into_existing_tables_is_backed_up_and_restored(project: Path, db_env: str) -> None:
    api.data_load(project)  # the tables exist before the task runs
    query(db_env, "UPDATE legacy.users SET doc = '{\"edited\": true}' WHERE _record = 1")
    users = project.parent / "agents-app" / "data" / "users" / "users.csv"
    users.write_text(users.read_text(encoding="utf-8-sig") + "999,x,y,z,w,v\n", encoding="utf-8")
    changes = {c.resource: c for c in api.plan(project, 2, only=TASK).changes}
    assert changes["table:legacy.users"].op == "update"
    assert "after a pg_dump backup" in changes["table:legacy.users"].summary

    api.apply(project, 2, only=TASK, force=True)
    dumps = list((project / ".migrate" / "backups").glob("*.dump"))
    assert len(dumps) == 1 and "legacy-users" in dumps[0].name
    assert query(db_env, "SELECT count(*) FROM legacy._migrate_files WHERE dataset='users'") == [
        (1,)
    ]

    api.rollback(project, 2)
    # back to the state before apply: the edited row, the old file's bookkeeping
    assert query(db_env, "SELECT doc FROM legacy.users WHERE _record = 1") == [({"edited": True},)]
    assert query(db_env, "SELECT count(*) FROM legacy.users") == [(300,)]
    assert schemas(db_env) == [("legacy",)]  # it existed before the task: it stays


def test_plan_does_not_start_an_embedded_server(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MIGRATE_DATABASE_URL", raising=False)
    changes = api.plan(project, 2, only=TASK).changes
    assert all(c.op == "create" for c in changes)
    assert not (project / ".migrate").exists()


def test_a_load_without_backup_says_it_cannot_be_undone(project: Path, db_env: str) -> None:
    """With backup.before_load false, reloading an existing table cannot be reversed: plan
    says so, apply asks about it on its own, rollback reports what it did not restore
    (issue 15, item 2) instead of doing nothing silently."""
    import json

    from typer.testing import CliRunner

    from migrate.cli.app import app

    roadmap = project / "phases" / "roadmap.yaml"
    text = roadmap.read_text(encoding="utf-8")
    assert text.count("before_load: true") == 1
    roadmap.write_text(text.replace("before_load: true", "before_load: false"), encoding="utf-8")
    api.data_load(project)  # the tables exist before the task runs
    users = project.parent / "agents-app" / "data" / "users" / "users.csv"
    users.write_text(users.read_text(encoding="utf-8-sig") + "999,x,y,z,w,v\n", encoding="utf-8")

    runner = CliRunner()
    planned = runner.invoke(app, ["-C", str(project), "plan", "--phase", "2", "-o", "json"])
    changes = {
        c["resource"]: c
        for p in json.loads(planned.stdout)["phases"]
        for t in p["tasks"]
        for c in t["changes"]
    }
    users_change = changes["table:legacy.users"]
    assert (users_change["op"], users_change["reversible"]) == ("update", False)
    assert "no backup" in users_change["cannot_undo"]
    assert changes["table:legacy.agent_runs"]["reversible"] is True  # unchanged: nothing lost
    table = runner.invoke(app, ["-C", str(project), "plan", "--phase", "2"])
    assert "cannot be undone: no backup" in table.stdout

    # without a terminal and without --yes, apply refuses on the question it must ask
    refused = runner.invoke(
        app, ["-C", str(project), "apply", "--phase", "2", "--only", TASK[0], "--force"]
    )
    assert refused.exit_code == 1 and "cannot be undone" in refused.stderr
    sha = "SELECT sha256 FROM legacy._migrate_files WHERE dataset = 'users'"
    before = query(db_env, sha)

    api.apply(project, 2, only=TASK, force=True)
    after = query(db_env, sha)
    assert after != before  # the changed file was reloaded
    result = api.rollback(project, 2)
    assert result is not None
    assert [line.split(":")[1].strip() for line in result.not_restored] == ["table"]
    assert "legacy.users keeps the rows loaded" in result.not_restored[0]
    assert query(db_env, sha) == after  # as it said: the reloaded file stays
