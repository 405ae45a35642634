"""A file `_migrate_files` does not know is hashed as its bytes stream into COPY instead
of being read once more beforehand: the recorded SHA-256 must be the file's, on every
path (one pass, the strict second pass after a refusal, other formats), and a row that
appears in `_migrate_files` between the plan and the load must not confuse it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from migrate import api
from migrate.reporting import NullReporter
from tests.integration.data.conftest import make_app, query


def _big_jsonl() -> bytes:
    """More than two 1 MiB blocks, a blank line, a line that is no object, and a last
    line without its newline."""
    lines = [json.dumps({"n": n, "pad": "x" * (n % 97)}) for n in range(30_000)]
    lines[10] = ""
    lines[20] = "[1, 2]"
    return ("\n".join(lines)).encode()


FILES: dict[str, bytes] = {
    "events/big.jsonl": _big_jsonl(),
    # the database refuses \u0000: the file goes again through the strict pass
    "events/refused.jsonl": b'{"a": 1}\n{"a": "\\u0000"}\n{"a": 3}\n',
    "users/users.csv": b"id,name\n1,ada\n2,bob\n",
    "settings/settings.json": b'[{"k": 1}, {"k": 2}]',
}


def _shas(url: str) -> dict[str, str]:
    return dict(query(url, "SELECT _source, sha256 FROM legacy._migrate_files"))  # type: ignore[arg-type]


def test_the_recorded_hash_is_the_files_on_every_path(tmp_path: Path, db_env: str) -> None:
    app = make_app(tmp_path / "app", dict(FILES))
    project = tmp_path / "project"
    api.init(project, app)

    first = api.data_load(project)
    expected = {name: hashlib.sha256(content).hexdigest() for name, content in FILES.items()}
    assert _shas(db_env) == expected
    loaded = {d.dataset: (d.loaded, d.rejected) for d in first.datasets}
    assert loaded == {"events": (29_998 + 2, 1 + 1), "users": (2, 0), "settings": (2, 0)}
    assert api.data_verify(project).ok

    again = api.data_load(project)  # unchanged: the recorded hashes match the files
    assert all(d.skipped_files == d.files and d.loaded == 0 for d in again.datasets)

    # a changed file (known to `_migrate_files`: hashed before, to compare) is replaced
    changed = b'{"a": 1}\n{"a": 2}\n'
    (app / "data" / "events" / "refused.jsonl").write_bytes(changed)
    third = api.data_load(project)
    events = next(d for d in third.datasets if d.dataset == "events")
    assert (events.loaded, events.rejected, events.skipped_files) == (2, 0, 1)
    assert _shas(db_env)["events/refused.jsonl"] == hashlib.sha256(changed).hexdigest()
    assert api.data_verify(project).ok


class _Meddler(NullReporter):
    """Writes a `_migrate_files` row for `source` once the load has planned its files
    (it found no row then), as if another writer had slipped one in."""

    def __init__(self, url: str, source: str) -> None:
        self.url = url
        self.source = source

    def start(self, key: str, description: str, total: Any = None, unit: str = "items") -> None:
        query(
            self.url,
            "INSERT INTO legacy._migrate_files (_source, dataset, table_name, sha256, bytes,"
            " records, rejected) VALUES (%s, 'events', 'events', 'bogus', 0, 99, 99)",
            self.source,
        )


def test_a_row_that_appears_mid_way_is_replaced(tmp_path: Path, db_env: str) -> None:
    first_file = b'{"a": 1}\n{"a": 2}\n'
    app = make_app(tmp_path / "app", {"events/a.jsonl": first_file})
    project = tmp_path / "project"
    api.init(project, app)
    # a new table: the row appears after the plan, for a file the table never held
    api.data_load(project, reporter=_Meddler(db_env, "events/a.jsonl"))
    # a table that exists: a new file of it, same story
    second_file = b'{"b": 1}\n\n{"b": 3}\n'
    (app / "data" / "events" / "b.jsonl").write_bytes(second_file)
    result = api.data_load(project, reporter=_Meddler(db_env, "events/b.jsonl"))
    assert [(d.loaded, d.skipped_files) for d in result.datasets] == [(2, 1)]

    rows = query(
        db_env,
        "SELECT _source, sha256, records, rejected FROM legacy._migrate_files ORDER BY 1",
    )
    assert rows == [
        ("events/a.jsonl", hashlib.sha256(first_file).hexdigest(), 2, 0),
        ("events/b.jsonl", hashlib.sha256(second_file).hexdigest(), 2, 0),
    ]
    keys = query(db_env, "SELECT _source, _record FROM legacy.events ORDER BY 1, 2")
    assert keys == [
        ("events/a.jsonl", 1),
        ("events/a.jsonl", 2),
        ("events/b.jsonl", 1),
        ("events/b.jsonl", 3),
    ]
    assert api.data_verify(project).ok
    again = api.data_load(project)
    assert [(d.loaded, d.skipped_files) for d in again.datasets] == [(0, 2)]
