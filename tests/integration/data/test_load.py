"""`migrate data load` against a real PostgreSQL: formats, rejects, exact values, re-runs."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from migrate import api
from tests.integration.data.conftest import make_app, query

EXAMPLE_COUNTS = {
    "agent_runs": 3000,
    "conversations": 201,
    "events": 500,
    "metrics__daily": 365,
    "metrics__hourly": 1000,
    "settings": 18,
    "users": 300,
}


def project_for(tmp_path: Path, files: dict[str, bytes | str]) -> Path:
    app = make_app(tmp_path / "app", files)
    project = tmp_path / "project"
    api.init(project, app)
    return project


def test_example_application_loads_and_reloads_nothing(project: Path, db_env: str) -> None:
    result = api.data_load(project)
    assert {d.table: d.loaded for d in result.datasets} == EXAMPLE_COUNTS
    assert all(d.rejected == 0 and d.created for d in result.datasets)
    for table, count in EXAMPLE_COUNTS.items():
        assert query(db_env, f"SELECT count(*) FROM legacy.{table}") == [(count,)]
    files = query(db_env, "SELECT count(*), sum(records), sum(rejected) FROM legacy._migrate_files")
    assert files == [(13, sum(EXAMPLE_COUNTS.values()), 0)]
    # exact values: a number larger than 64 bits and a subnormal float
    row = query(
        db_env,
        "SELECT doc->'output'->>'checksum', (doc->'output'->>'min_loss')::numeric = 1e-320"
        " FROM legacy.agent_runs WHERE doc->>'id' = 'run-2026-02-00042'",
    )
    assert row == [("123456789012345678901234567890", True)]
    # a primary key on (_source, _record)
    keys = query(
        db_env,
        "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
        " WHERE c.relnamespace = 'legacy'::regnamespace AND i.indisprimary",
    )
    assert keys == [(len(EXAMPLE_COUNTS) + 2,)]

    again = api.data_load(project)
    assert all(d.loaded == 0 and d.skipped_files == d.files for d in again.datasets)
    assert {d.table: d.records for d in again.datasets} == EXAMPLE_COUNTS


def test_record_numbers_follow_the_contract(tmp_path: Path, db_env: str) -> None:
    project = project_for(
        tmp_path,
        {
            "lines/a.jsonl": '{"n": 1}\n\n  \n{"n": 4}\n',
            "arrays/a.json": '[{"n": 1}, {"n": 2}]',
            "arrays/b.json": '{"only": true}',
            "docs/list.yaml": "- n: 1\n- n: 2\n- n: 3\n",
            "docs/map.yml": "n: 1\n",
            "docs/many.yaml": "n: 1\n---\nn: 2\n---\n",
            "sheet/s.csv": '\ufeffa,b\n1,2\n\n3,"x\ny"\n',
        },
    )
    api.data_load(project)

    def keys(table: str) -> list[tuple[str, int]]:
        return [
            (s, r)
            for s, r in query(db_env, f"SELECT _source, _record FROM legacy.{table} ORDER BY 1, 2")
        ]

    assert keys("lines") == [("lines/a.jsonl", 1), ("lines/a.jsonl", 4)]  # physical lines
    assert keys("arrays") == [("arrays/a.json", 1), ("arrays/a.json", 2), ("arrays/b.json", 1)]
    assert keys("docs") == [
        ("docs/list.yaml", 1),
        ("docs/list.yaml", 2),
        ("docs/list.yaml", 3),
        ("docs/many.yaml", 1),
        ("docs/many.yaml", 2),
        ("docs/map.yml", 1),
    ]
    assert query(db_env, "SELECT _record, doc FROM legacy.sheet ORDER BY 1") == [
        (1, {"a": "1", "b": "2"}),
        (2, {"a": "3", "b": "x\ny"}),  # BOM dropped, multi-line field kept, every value a string
    ]


TRICKY = {
    "tab": "a\tb",
    "newline": "line1\nline2\r\n",
    "backslash": "C:\\path\\N",
    "copy_null": "\\N",
    "quotes": "she said \"hi\" 'there'",
    "unicode": "é 漢字 🚀 \u2028 \u00a0",
    "control": "\u0001\u001f",
    "big": 123456789012345678901234567890,
    "negative_big": -98765432109876543210987654321,
    "tiny": Decimal("1e-320"),
    "precise": Decimal("0.1000000000000000055511151231257827021181583404541015625"),
    "nested": {"list": [1, "two", None, True, {"deep": []}]},
    "": "empty key",
}


def tricky_json() -> str:
    text = json.dumps(
        {k: v for k, v in TRICKY.items() if not isinstance(v, Decimal)}, ensure_ascii=False
    )
    decimals = ", ".join(f'"{k}": {v}' for k, v in TRICKY.items() if isinstance(v, Decimal))
    return text[:-1] + ", " + decimals + "}"


@pytest.mark.parametrize("fmt", ["jsonl", "json", "yaml"])
def test_tricky_values_survive_exactly(tmp_path: Path, db_env: str, fmt: str) -> None:
    text = tricky_json()
    content = {"jsonl": text + "\n", "json": f"[{text}]", "yaml": text}[fmt]  # JSON is YAML
    if fmt == "yaml":
        # YAML is not JSON at two edges: U+2028 is a line break (libyaml folds the spaces
        # around it), and YAML 1.1 reads 1E-320 without a dot as a string
        text = text.replace(" \u2028 ", " ")
        content = text.replace("1E-320", "1.0E-320")
    project = project_for(tmp_path, {f"t/t.{fmt}": content})
    result = api.data_load(project)
    assert result.datasets[0].loaded == 1 and result.datasets[0].rejected == 0
    [(equal,)] = query(db_env, "SELECT doc = %s::jsonb FROM legacy.t", text)
    assert equal  # jsonb equality: exact numbers, exact strings
    [(tiny, big)] = query(
        db_env, "SELECT (doc->>'tiny')::numeric = 1e-320, doc->>'big' FROM legacy.t"
    )
    assert tiny and big == "123456789012345678901234567890"


def test_csv_tricky_fields(tmp_path: Path, db_env: str) -> None:
    rows = (
        'id,text\n1,"tab\there"\n2,"back\\\\slash \\N"\n3,"quote "" inside, and comma"\n4,"é 🚀"\n'
    )
    project = project_for(tmp_path, {"c/c.csv": rows})
    api.data_load(project)
    texts = [t for (t,) in query(db_env, "SELECT doc->>'text' FROM legacy.c ORDER BY _record")]
    assert texts == ["tab\there", "back\\\\slash \\N", 'quote " inside, and comma', "é 🚀"]


def test_every_reject_is_kept_with_reason_and_raw_bytes(tmp_path: Path, db_env: str) -> None:
    bad_utf8 = b'{"name": "caf\xe9"}'
    project = project_for(
        tmp_path,
        {
            "j/a.jsonl": b"\n".join(
                [
                    b'{"ok": 1}',
                    b'{"broken": ',
                    b"[1, 2]",
                    bad_utf8,
                    b'{"nul": "a\\u0000b"}',
                    b'"just a string"',
                    b'{"ok": 2}',
                    b"",
                ]
            ),
            "j/whole.json": b'{"unclosed": [1, 2',
            "j/scalars.json": b'[{"ok": 3}, 42, "x"]',
            "y/bad.yaml": b"a: [unclosed\n",
            "y/nan.yaml": b"- {v: .nan}\n- {v: 1.5}\n",
            "c/c.csv": b"a,b\n1,2\n3\n4,5,6\n7,\x00\n8,9\n",
            "c/dup.csv": b"a,a\n1,2\n",
        },
    )
    result = {d.dataset: d for d in api.data_load(project).datasets}
    assert (result["j"].loaded, result["j"].rejected) == (3, 8)
    assert (result["y"].loaded, result["y"].rejected) == (1, 2)
    assert (result["c"].loaded, result["c"].rejected) == (2, 4)
    rejects = {
        (source, record): (reason, bytes(raw))
        for source, record, reason, raw in query(db_env, "SELECT * FROM legacy._migrate_rejects")
    }
    assert rejects[("j/a.jsonl", 2)][1] == b'{"broken": '
    assert "invalid JSON" in rejects[("j/a.jsonl", 2)][0]
    assert "not an object" in rejects[("j/a.jsonl", 3)][0]
    assert rejects[("j/a.jsonl", 4)] == ("invalid UTF-8 at byte 13", bad_utf8)
    assert "NUL" in rejects[("j/a.jsonl", 5)][0]
    assert "a JSON string, not an object" in rejects[("j/a.jsonl", 6)][0]
    assert rejects[("j/whole.json", 1)][1] == b'{"unclosed": [1, 2'  # a whole unparsable file
    assert "element 2 is a number" in rejects[("j/scalars.json", 2)][0]
    assert rejects[("y/bad.yaml", 1)][0].startswith("invalid YAML, the whole file is rejected")
    assert "nan is not a JSON number" in rejects[("y/nan.yaml", 1)][0]
    assert rejects[("c/c.csv", 2)] == ("the row has 1 fields, the header 2", b"3\n")
    assert rejects[("c/c.csv", 3)][1] == b"4,5,6\n"
    assert "NUL" in rejects[("c/c.csv", 4)][0]
    assert "duplicate column name" in rejects[("c/dup.csv", 1)][0]
    # nothing lost: every source record is a row or a reject
    [(rows,)] = query(
        db_env, "SELECT (SELECT count(*) FROM legacy.j) + (SELECT count(*) FROM legacy.c)"
    )
    assert rows + len([k for k in rejects if k[0].startswith(("j/", "c/"))]) == 3 + 8 + 2 + 4
    files = dict(query(db_env, "SELECT _source, rejected FROM legacy._migrate_files"))
    assert files["j/a.jsonl"] == 5 and files["c/dup.csv"] == 1


def test_a_changed_file_is_replaced_and_others_are_skipped(tmp_path: Path, db_env: str) -> None:
    project = project_for(
        tmp_path, {"d/a.jsonl": '{"v": 1}\n{"v": 2}\n', "d/b.jsonl": '{"v": 3}\n'}
    )
    api.data_load(project)
    (tmp_path / "app/data/d/a.jsonl").write_text('{"v": 10}\n')
    result = api.data_load(project).datasets[0]
    assert (result.loaded, result.skipped_files, result.records) == (1, 1, 2)
    assert query(db_env, "SELECT _source, _record, doc FROM legacy.d ORDER BY 1, 2") == [
        ("d/a.jsonl", 1, {"v": 10}),
        ("d/b.jsonl", 1, {"v": 3}),
    ]


def test_strange_dataset_names_are_just_names(tmp_path: Path, db_env: str) -> None:
    project = project_for(tmp_path, {"'; DROP TABLE x; --/a.jsonl": '{"v": 1}\n'})
    [result] = api.data_load(project).datasets
    assert result.table == "___drop_table_x____"
    assert query(db_env, 'SELECT count(*) FROM legacy."___drop_table_x____"') == [(1,)]


def test_a_table_migrate_did_not_create_is_never_written(tmp_path: Path, db_env: str) -> None:
    project = project_for(tmp_path, {"users/a.jsonl": '{"v": 1}\n'})
    query(db_env, "CREATE SCHEMA legacy")
    query(db_env, "CREATE TABLE legacy.users (id int)")
    with pytest.raises(Exception, match="was not created by migrate"):
        api.data_load(project)
    assert query(db_env, "SELECT count(*) FROM legacy.users") == [(0,)]


def test_a_concurrent_load_is_refused(project: Path, db_env: str) -> None:
    import psycopg

    from migrate.data.database import DatabaseError

    with psycopg.connect(db_env, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtext('migrate data'), hashtext('legacy'))")
        with pytest.raises(
            DatabaseError, match="another migrate run is loading into schema 'legacy'"
        ):
            api.data_load(project)
    assert query(db_env, "SELECT count(*) FROM pg_namespace WHERE nspname = 'legacy'") == [(0,)]
    assert api.data_load(project).datasets[0].loaded > 0  # once the other is done


def test_dataset_selection(project: Path, db_env: str) -> None:
    result = api.data_load(project, ["users", "metrics/daily"])
    assert [d.table for d in result.datasets] == ["users", "metrics__daily"]
    with pytest.raises(Exception, match="no dataset 'nope'") as caught:
        api.data_load(project, ["nope"])
    assert "agent_runs" in str(caught.value)
