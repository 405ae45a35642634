"""Hostile input through the CLI (issue 13, items 2, 6, 7, 8, 10): one bad record or
file never stops a load, never prints "internal error", and never reads outside
the application."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.data.cli import migrate, output, project_for
from tests.integration.data.conftest import query

DEPTH = 100_000


def deep(depth: int = DEPTH) -> bytes:
    return b'{"deep": ' + b"[" * depth + b"]" * depth + b"}"


def rejects(url: str) -> dict[tuple[str, int], tuple[str, bytes]]:
    return {
        (source, record): (reason, bytes(raw))
        for source, record, reason, raw in query(url, "SELECT * FROM legacy._migrate_rejects")
    }


def keys(url: str, table: str) -> list[tuple[str, int]]:
    rows = query(url, f"SELECT _source, _record FROM legacy.{table} ORDER BY 1, 2")
    return [(source, record) for source, record in rows]


# --- item 2: symbolic links ---------------------------------------------------------------


def test_symlinks_that_lead_out_of_the_application_are_not_followed(
    tmp_path: Path, database_url: str
) -> None:
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret.csv").write_text("user,password\nroot,hunter2\n")
    (outside / "dir" / "more.jsonl").write_text('{"secret": true}\n')
    project = project_for(
        tmp_path,
        {"links/ok.jsonl": '{"n": 1}\n', "shared/real.jsonl": '{"n": 2}\n'},
    )
    data = tmp_path / "app" / "data"
    (data / "links" / "passwd.csv").symlink_to(outside / "secret.csv")
    (data / "links" / "etc.jsonl").symlink_to("/etc/passwd")
    (data / "outdir").symlink_to(outside / "dir", target_is_directory=True)
    (data / "links" / "inside.jsonl").symlink_to(data / "shared" / "real.jsonl")  # stays in

    loaded = migrate(project, database_url, "data", "load")
    assert loaded.returncode == 0, output(loaded)
    for link, target in (
        ("data/links/passwd.csv", outside / "secret.csv"),
        ("data/links/etc.jsonl", "/etc/passwd"),
        ("data/outdir", outside / "dir"),
    ):
        assert f"{link} is a symbolic link to {target}" in loaded.stderr, output(loaded)
    assert keys(database_url, "links") == [("links/inside.jsonl", 1), ("links/ok.jsonl", 1)]
    tables = query(database_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'legacy'")
    assert ("outdir",) not in tables
    assert "hunter2" not in str(query(database_url, "SELECT doc FROM legacy.links"))

    verified = migrate(project, database_url, "data", "verify")
    assert verified.returncode == 0, output(verified)


# --- item 6: nested too deep, too big -------------------------------------------------------


def test_a_record_nested_too_deep_is_a_reject_and_the_load_goes_on(
    tmp_path: Path, database_url: str
) -> None:
    project = project_for(
        tmp_path,
        {
            "a/lines.jsonl": b'{"n": 1}\n' + deep() + b'\n{"n": 3}\n',
            "a/whole.json": deep(),
            "a/array.json": b'[{"n": 1}, ' + deep() + b', {"n": 3}]',
            "a/deep.yaml": b"[" * DEPTH + b"]" * DEPTH + b"\n",
            "b/fine.jsonl": '{"n": 1}\n',
        },
    )
    loaded = migrate(project, database_url, "data", "load")
    assert loaded.returncode == 0, output(loaded)
    assert "internal error" not in loaded.stderr
    assert keys(database_url, "a") == [
        ("a/array.json", 1),
        ("a/array.json", 3),
        ("a/lines.jsonl", 1),
        ("a/lines.jsonl", 3),
    ]
    assert keys(database_url, "b") == [("b/fine.jsonl", 1)]
    found = rejects(database_url)
    assert set(found) == {
        ("a/lines.jsonl", 2),
        ("a/whole.json", 1),
        ("a/array.json", 2),
        ("a/deep.yaml", 1),
    }
    assert found[("a/lines.jsonl", 2)] == (found[("a/lines.jsonl", 2)][0], deep())  # exact raw
    assert "stack depth" in found[("a/lines.jsonl", 2)][0]
    assert "PostgreSQL refused it" in found[("a/whole.json", 1)][0]
    assert "nesting depth" in found[("a/deep.yaml", 1)][0]  # libyaml stops at 1000 levels

    verified = migrate(project, database_url, "data", "verify")
    assert verified.returncode == 0, output(verified)


HUGE = 260 << 20  # over the 256 MiB a jsonb string can hold (and RAW_LIMIT), not much more


@pytest.mark.skipif(
    os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") < 8 << 30,
    reason="needs 8 GB of memory",
)
def test_a_record_too_big_for_postgresql_is_a_reject(tmp_path: Path, database_url: str) -> None:
    project = project_for(tmp_path, {"big/a.jsonl": '{"n": 1}\n', "big/c.jsonl": '{"n": 3}\n'})
    with (tmp_path / "app" / "data" / "big" / "b.jsonl").open("wb") as handle:
        handle.write(b'{"n": 1}\n{"huge": "')
        handle.write(b"x" * HUGE)
        handle.write(b'"}\n{"n": 3}\n')
    loaded = migrate(project, database_url, "data", "load")
    assert loaded.returncode == 0, output(loaded)
    assert "internal error" not in loaded.stderr
    assert keys(database_url, "big") == [
        ("big/a.jsonl", 1),
        ("big/b.jsonl", 1),
        ("big/b.jsonl", 3),
        ("big/c.jsonl", 1),
    ]
    [(record, reason, size)] = query(
        database_url, "SELECT _record, reason, length(raw) FROM legacy._migrate_rejects"
    )
    assert record == 2 and "PostgreSQL refused it" in reason, reason
    assert size == 256 << 20 and "first" in reason  # a bytea cannot hold all of it


# --- item 7: CSV fields over 128 KiB ---------------------------------------------------------


def test_a_csv_field_over_128_kib_is_one_field_of_one_row(
    tmp_path: Path, database_url: str
) -> None:
    big = "é" * (200 << 10)
    rows = [f"{i},small {i}\n" for i in range(2, 11)]
    bad_row = '11,"two\nlines",extra\n'
    content = f'id,text\n1,"{big}"\n' + "".join(rows) + bad_row + "12,last\n"
    project = project_for(tmp_path, {"sheet/s.csv": content.encode()})
    loaded = migrate(project, database_url, "data", "load")
    assert loaded.returncode == 0, output(loaded)
    assert keys(database_url, "sheet") == [("sheet/s.csv", n) for n in (*range(1, 11), 12)]
    [(text,)] = query(database_url, "SELECT doc->>'text' FROM legacy.sheet WHERE _record = 1")
    assert text == big
    assert rejects(database_url) == {
        ("sheet/s.csv", 11): ("the row has 3 fields, the header 2", bad_row.encode())
    }
    verified = migrate(project, database_url, "data", "verify", "--output", "json")
    assert verified.returncode == 0, output(verified)
    assert '"rejected": 1' in verified.stdout and '"loaded": 11' in verified.stdout


# --- item 8: YAML sets ----------------------------------------------------------------------


def test_a_yaml_set_is_rejected_with_its_source_bytes(tmp_path: Path, database_url: str) -> None:
    names = ", ".join(f"name{i}" for i in range(40))
    documents = f"a: 1\n---\n!!set {{{names}}}\n---\nb: 2\n"
    listing = f"- x: 1\n- !!set {{{names}}}\n- x: 3\n"
    project = project_for(tmp_path, {"s/docs.yaml": documents, "s/list.yaml": listing})
    loaded = migrate(project, database_url, "data", "load")
    assert loaded.returncode == 0, output(loaded)
    found = rejects(database_url)
    assert found[("s/docs.yaml", 2)][1] == f"!!set {{{names}}}".encode()
    assert found[("s/list.yaml", 2)][1] == f"!!set {{{names}}}".encode()
    assert "set, not an object" in found[("s/docs.yaml", 2)][0]
    for seed in ("1", "2", "3"):  # another process, another order of a Python set
        os.environ["PYTHONHASHSEED"] = seed
        try:
            verified = migrate(project, database_url, "data", "verify")
        finally:
            del os.environ["PYTHONHASHSEED"]
        assert verified.returncode == 0, output(verified)


# --- item 10: an unreadable file --------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["plan"],
        ["data", "load"],
        ["data", "verify"],
        ["apply", "--phase", "2", "--only", "database-migration", "--yes", "--force"],
    ],
    ids=["plan", "data-load", "data-verify", "apply"],
)
def test_an_unreadable_file_is_named_and_nothing_crashes(
    tmp_path: Path, database_url: str, command: list[str]
) -> None:
    project = project_for(
        tmp_path, {"users/users.csv": "id,name\n1,ada\n", "events/e.jsonl": '{"n": 1}\n'}
    )
    (tmp_path / "app" / "data" / "users" / "users.csv").chmod(0)
    result = migrate(project, database_url, *command, unprivileged=True)
    assert result.returncode == 1, output(result)
    assert "error: data/users/users.csv: permission denied" in result.stderr, output(result)
    assert "internal error" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_a_csv_field_over_the_limit_rejects_its_row_only(
    tmp_path: Path, db_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from migrate.cli.app import app
    from migrate.data import records

    monkeypatch.setattr(records, "CSV_FIELD_LIMIT", 1000)  # the real one is 256 MiB
    long_row = f'2,"{"y" * 1001}"\r\n'
    content = f"id,text\r\n1,short\r\n{long_row}3,after\r\n"
    project = project_for(tmp_path, {"sheet/s.csv": content})
    result = CliRunner().invoke(app, ["-C", str(project), "data", "load"])
    assert result.exit_code == 0, result.output
    assert keys(db_env, "sheet") == [("sheet/s.csv", 1), ("sheet/s.csv", 3)]
    [(reason, raw)] = rejects(db_env).values()
    assert raw == long_row.encode() and "over the limit of 1000" in reason
    result = CliRunner().invoke(app, ["-C", str(project), "data", "verify"])
    assert result.exit_code == 0, result.output


# --- must hold: all of it in one application ---------------------------------------------------


def test_a_hostile_application_loads_every_record_as_a_row_or_a_reject(
    tmp_path: Path, database_url: str
) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text("user,password\nroot,hunter2\n")
    names = ", ".join(f"n{i}" for i in range(30))
    files: dict[str, bytes | str] = {
        "h/lines.jsonl": b'{"n": 1}\n' + deep() + b'\n{"n": 3}\n',  # 3 records
        "h/whole.json": deep(),  # 1
        "h/array.json": b'[{"n": 1}, ' + deep() + b", 7]",  # 3
        "h/big.csv": 'a,b\n1,"' + "z" * (200 << 10) + '"\n' + "2,x\n" * 9,  # 10
        "h/sets.yaml": f"a: 1\n---\n!!set {{{names}}}\n",  # 2
        "users/users.csv": "id,name\n1,ada\n2,bob\n",  # 2, unreadable at first
    }
    expected = {"h/lines.jsonl": 3, "h/whole.json": 1, "h/array.json": 3, "h/big.csv": 10}
    expected |= {"h/sets.yaml": 2, "users/users.csv": 2}
    project = project_for(tmp_path, files)
    (tmp_path / "app" / "data" / "h" / "passwd.csv").symlink_to(outside)
    users = tmp_path / "app" / "data" / "users" / "users.csv"
    users.chmod(0)

    refused = migrate(project, database_url, "data", "load", unprivileged=True)
    assert refused.returncode == 1, output(refused)
    assert "error: data/users/users.csv: permission denied" in refused.stderr, output(refused)

    users.chmod(0o644)
    loaded = migrate(project, database_url, "data", "load")
    assert loaded.returncode in (0, 1), output(loaded)
    for result in (refused, loaded):
        assert "internal error" not in result.stdout + result.stderr, output(result)
        assert "Traceback" not in result.stderr, output(result)
    assert "data/h/passwd.csv is a symbolic link" in loaded.stderr, output(loaded)
    counts = dict(
        query(
            database_url,
            "SELECT _source, count(*)::int FROM (SELECT _source FROM legacy.h"
            " UNION ALL SELECT _source FROM legacy.users"
            " UNION ALL SELECT _source FROM legacy._migrate_rejects) t GROUP BY 1",
        )
    )
    assert counts == expected
    files_table = query(
        database_url, "SELECT _source, records + rejected FROM legacy._migrate_files"
    )
    assert dict(files_table) == expected
    verified = migrate(project, database_url, "data", "verify")
    assert verified.returncode == 0, output(verified)
