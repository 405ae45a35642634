"""The shortcuts of a fast load (issue 14) keep every record a row or a reject: a new
table skips the DELETE of old rows, a table without its index (a first load cut short)
gets it before loading, a record refused in the first pass sends the file again in a
new transaction, and the load's lock is free as soon as the load returns."""

from __future__ import annotations

from pathlib import Path

from migrate import api
from tests.integration.data.conftest import make_app, query


def project_for(tmp_path: Path, files: dict[str, bytes | str]) -> Path:
    app = make_app(tmp_path / "app", files)
    project = tmp_path / "project"
    api.init(project, app)
    return project


def test_many_small_files_in_a_new_table_then_a_changed_one(tmp_path: Path, db_env: str) -> None:
    files: dict[str, bytes | str] = {
        f"notes/n{i:03}.jsonl": f'{{"n": {i}}}\n{{"m": {i}}}\n' for i in range(60)
    }
    project = project_for(tmp_path, files)
    [result] = api.data_load(project).datasets
    assert (result.created, result.loaded, result.rejected) == (True, 120, 0)
    (tmp_path / "app/data/notes/n007.jsonl").write_text('{"n": "seven"}\n')
    [again] = api.data_load(project).datasets
    assert (again.loaded, again.skipped_files, again.records) == (1, 59, 119)
    rows = query(db_env, "SELECT _record, doc FROM legacy.notes WHERE _source = 'notes/n007.jsonl'")
    assert rows == [(1, {"n": "seven"})]
    assert query(db_env, "SELECT count(*) FROM legacy.notes") == [(119,)]


def test_a_table_left_without_its_index_gets_it_before_the_next_load(
    tmp_path: Path, db_env: str
) -> None:
    project = project_for(
        tmp_path, {"d/a.jsonl": '{"v": 1}\n{"v": 2}\n', "d/b.jsonl": '{"v": 3}\n'}
    )
    api.data_load(project)
    # as after a first load cut short: rows and bookkeeping, no primary key yet
    query(db_env, "ALTER TABLE legacy.d DROP CONSTRAINT d_pkey")
    (tmp_path / "app/data/d/a.jsonl").write_text('{"v": 10}\n')
    [result] = api.data_load(project).datasets
    assert (result.loaded, result.skipped_files) == (1, 1)
    assert query(db_env, "SELECT _source, _record, doc FROM legacy.d ORDER BY 1, 2") == [
        ("d/a.jsonl", 1, {"v": 10}),
        ("d/b.jsonl", 1, {"v": 3}),
    ]
    primary = query(
        db_env,
        "SELECT count(*) FROM pg_index WHERE indrelid = 'legacy.d'::regclass AND indisprimary",
    )
    assert primary == [(1,)]


def test_a_refused_record_sends_its_file_again_and_the_others_stay(
    tmp_path: Path, db_env: str
) -> None:
    # looks like an object, so the first pass sends it unparsed; jsonb refuses \u0000
    bad = b'{"nul": "\\u0000"}'
    project = project_for(
        tmp_path,
        {
            "m/a.jsonl": b'{"n": 1}\n' + bad + b'\n[1]\n\n{"n": 5}\n',
            "m/b.jsonl": b'{"n": 1}\n',
        },
    )
    [result] = api.data_load(project).datasets
    assert (result.loaded, result.rejected, result.records) == (3, 2, 5)
    assert query(db_env, "SELECT _source, _record FROM legacy.m ORDER BY 1, 2") == [
        ("m/a.jsonl", 1),
        ("m/a.jsonl", 5),
        ("m/b.jsonl", 1),
    ]
    rejects = query(db_env, "SELECT _record, raw FROM legacy._migrate_rejects ORDER BY 1")
    assert rejects == [(2, bad), (3, b"[1]")]


def test_the_lock_is_free_when_the_load_returns(tmp_path: Path, db_env: str) -> None:
    project = project_for(tmp_path, {"d/a.jsonl": '{"v": 1}\n'})
    api.data_load(project)
    held = query(db_env, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
    assert held == [(0,)]


def test_the_lock_is_free_when_data_rollback_returns(tmp_path: Path, db_env: str) -> None:
    """As for load: a load right after a rollback is not refused by the rollback's lock,
    which a closed connection releases only when its server process has exited."""
    project = project_for(tmp_path, {"d/a.jsonl": '{"v": 1}\n'})
    api.data_load(project)
    result = api.data_rollback(project)
    assert result is not None and result.dropped
    held = query(db_env, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
    assert held == [(0,)]
