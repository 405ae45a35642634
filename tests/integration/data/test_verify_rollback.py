"""`data verify` finds every kind of difference; `data rollback` undoes exactly the load."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from migrate import api
from migrate.cli.app import app
from tests.integration.data.conftest import query


def test_verify_agrees_after_a_load(project: Path, db_env: str) -> None:
    api.data_load(project)
    result = api.data_verify(project)
    assert result.ok
    assert {d.table: (d.records, d.rows) for d in result.datasets}["users"] == (300, 300)


def test_verify_finds_a_deleted_row_a_changed_doc_and_a_changed_file(
    project: Path, db_env: str
) -> None:
    api.data_load(project)
    query(db_env, "DELETE FROM legacy.users WHERE _record = 7")
    query(db_env, "UPDATE legacy.events SET doc = doc || '{\"tampered\": true}' WHERE _record = 3")
    query(db_env, "INSERT INTO legacy.settings VALUES ('settings/ghost.yaml', 1, '{}')")
    runs = project.parent / "agents-app" / "data" / "agent_runs" / "runs-2026-01.jsonl"
    runs.write_text(runs.read_text() + '{"appended": true}\n')
    checks = {d.dataset: d for d in api.data_verify(project).datasets}
    assert not checks["users"].ok and checks["users"].missing == 1
    assert "missing: users/users.csv record 7" in checks["users"].examples
    assert checks["events"].changed == 1
    assert checks["settings"].extra == 1
    assert checks["agent_runs"].changed_files == ["agent_runs/runs-2026-01.jsonl"]
    assert checks["agent_runs"].missing == 1
    assert checks["conversations"].ok

    result = CliRunner().invoke(app, ["-C", str(project), "data", "verify"])
    assert result.exit_code == 1
    assert "1 source records missing from the table" in result.stdout
    assert "Differences found" in result.stdout
    json_result = CliRunner().invoke(app, ["-C", str(project), "data", "verify", "-o", "json"])
    assert json_result.exit_code == 1 and '"ok": false' in json_result.stdout


def test_verify_compares_rejects(tmp_path: Path, project: Path, db_env: str) -> None:
    bad = project.parent / "agents-app" / "data" / "events" / "late.jsonl"
    bad.write_text('{"ok": 1}\nnot json\n')
    api.data_load(project)
    assert api.data_verify(project).ok
    query(db_env, "DELETE FROM legacy._migrate_rejects")
    [events] = [d for d in api.data_verify(project).datasets if d.dataset == "events"]
    assert events.rejects_differ == 1


def snapshot(url: str) -> list[tuple[str, str]]:
    return query(
        url,
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1, 2",
    ) + query(url, "SELECT nspname, '' FROM pg_namespace ORDER BY 1")


def test_rollback_leaves_the_database_as_it_was(project: Path, db_env: str) -> None:
    before = snapshot(db_env)
    api.data_load(project)
    result = api.data_rollback(project)
    assert result is not None and result.dropped_schema
    assert len(result.dropped) == 9  # seven datasets and two bookkeeping tables
    assert snapshot(db_env) == before
    with pytest.raises(Exception, match="nothing to roll back"):
        api.data_rollback(project)


def test_rollback_keeps_what_it_did_not_create(project: Path, db_env: str) -> None:
    query(db_env, "CREATE SCHEMA legacy")
    query(db_env, "CREATE TABLE legacy.mine (id int)")
    api.data_load(project)
    result = api.data_rollback(project)
    assert result is not None and not result.dropped_schema
    assert query(
        db_env, "SELECT relname FROM pg_class WHERE relnamespace = 'legacy'::regnamespace"
    ) == [("mine",)]


def test_rollback_of_one_dataset(project: Path, db_env: str) -> None:
    api.data_load(project)
    result = api.data_rollback(project, ["users"])
    assert result is not None and result.dropped == ["users"]
    assert query(db_env, "SELECT count(*) FROM legacy._migrate_files WHERE dataset = 'users'") == [
        (0,)
    ]
    assert query(db_env, "SELECT count(*) FROM legacy._migrate_files") == [(12,)]
    again = {d.dataset: d for d in api.data_load(project).datasets}
    assert again["users"].loaded == 300 and again["events"].loaded == 0


def test_rollback_cli_asks(project: Path, db_env: str) -> None:
    api.data_load(project)
    refused = CliRunner().invoke(app, ["-C", str(project), "data", "rollback"])
    assert refused.exit_code == 1 and "pass --yes" in refused.stderr
    assert query(db_env, "SELECT count(*) FROM legacy.users") == [(300,)]
    done = CliRunner().invoke(app, ["-C", str(project), "data", "rollback", "--yes"])
    assert done.exit_code == 0, done.output
    assert "Dropped 9 table(s) and schema legacy." in done.stdout


def test_the_password_never_shows(project: Path, database_url: str, tmp_path: Path) -> None:
    from psycopg import conninfo

    url = conninfo.make_conninfo(database_url, password="s3cret-pw")
    runner = CliRunner()
    loaded = runner.invoke(
        app, ["-C", str(project), "data", "load", "--database-url", url, "-o", "json"]
    )
    assert loaded.exit_code == 0, loaded.output
    assert "s3cret-pw" not in loaded.output
    assert "password=***" in loaded.stdout  # the masked URL is reported
    wrong = url.replace("dbname=", "dbname=nope_")
    failed = runner.invoke(app, ["-C", str(project), "data", "load", "--database-url", wrong])
    assert failed.exit_code == 1 and "cannot connect" in failed.stderr
    assert "s3cret-pw" not in failed.output
    for path in (project / ".migrate").rglob("*"):
        if path.is_file():
            assert b"s3cret-pw" not in path.read_bytes(), path


def test_global_database_url_comes_before_the_variable(
    project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIGRATE_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/nothing")
    result = CliRunner().invoke(
        app, ["-C", str(project), "--database-url", database_url, "data", "load", "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    assert query(database_url, "SELECT count(*) FROM legacy.users") == [(300,)]
    verify = CliRunner().invoke(
        app, ["--database-url", database_url, "-C", str(project), "data", "verify", "-o", "json"]
    )
    assert verify.exit_code == 0 and '"loaded": 300' in verify.stdout
    # messages name where the URL came from: the global option, not the variable it sets
    table = CliRunner().invoke(
        app, ["--database-url", database_url, "-C", str(project), "data", "verify"]
    )
    assert table.exit_code == 0, table.output
    assert "(from --database-url)" in table.output
    assert "(from MIGRATE_DATABASE_URL)" not in table.output
