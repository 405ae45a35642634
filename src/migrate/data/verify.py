"""`migrate data verify`: the source files against the database, record by record.

The source is read again with the same readers and COPYed into temporary
tables; PostgreSQL then compares keys and documents (jsonb equality, so
numbers compare by exact value). Rejects are compared too, and every file's
SHA-256 against what `_migrate_files` recorded.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migrate.data import tables
from migrate.data.copying import copy_rejects, store_file
from migrate.data.selection import sha256_file, unreadable
from migrate.names import table_name
from migrate.reporting import NullReporter, Reporter

if TYPE_CHECKING:
    import psycopg

    from migrate.data.database import Database
    from migrate.inventory import Dataset

EXAMPLES = 5


@dataclass
class DatasetCheck:
    dataset: str
    table: str
    files: int = 0
    records: int = 0  # source records (rows + rejects)
    rejected: int = 0  # source records that are rejects
    seconds: float = 0.0
    rows: int = 0  # rows in the table
    missing: int = 0  # source records with no row
    extra: int = 0  # rows with no source record
    changed: int = 0  # rows whose doc differs from the source
    rejects_differ: int = 0  # rejects in one place and not the other
    changed_files: list[str] = field(default_factory=list)  # SHA-256 differs from the load
    unloaded_files: list[str] = field(default_factory=list)  # never loaded
    gone_files: list[str] = field(default_factory=list)  # loaded, no longer in the source
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.missing
            or self.extra
            or self.changed
            or self.rejects_differ
            or self.changed_files
            or self.unloaded_files
            or self.gone_files
        )

    def problems(self) -> list[str]:
        out = []
        for count, what in (
            (self.missing, "source records missing from the table"),
            (self.extra, "rows with no source record"),
            (self.changed, "rows whose document differs from the source"),
            (self.rejects_differ, "rejects that differ from _migrate_rejects"),
        ):
            if count:
                out.append(f"{count} {what}")
        for files, what in (
            (self.changed_files, "file(s) changed since the load"),
            (self.unloaded_files, "file(s) never loaded"),
            (self.gone_files, "file(s) loaded but gone from the source"),
        ):
            if files:
                out.append(f"{len(files)} {what}: {', '.join(files[:EXAMPLES])}")
        return out

    def to_dict(self) -> dict[str, Any]:
        # DESIGN 3.8: the `data load` shape plus "ok"; loaded = rows in the table,
        # rejected = rejects the source gives now; then what verify found
        return {
            "dataset": self.dataset,
            "table": self.table,
            "files": self.files,
            "records": self.records,
            "loaded": self.rows,
            "rejected": self.rejected,
            "skipped_files": 0,
            "seconds": round(self.seconds, 3),
            "ok": self.ok,
            "missing": self.missing,
            "extra": self.extra,
            "changed": self.changed,
            "rejects_differ": self.rejects_differ,
            "changed_files": self.changed_files,
            "unloaded_files": self.unloaded_files,
            "gone_files": self.gone_files,
            "examples": self.examples,
        }


@dataclass
class VerifyResult:
    database: str
    schema: str
    datasets: list[DatasetCheck]

    @property
    def ok(self) -> bool:
        return all(d.ok for d in self.datasets)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "ok": self.ok,
            "database": self.database,
            "schema": self.schema,
            "datasets": [d.to_dict() for d in self.datasets],
        }


def verify(
    db: Database, schema: str, datasets: Sequence[Dataset], *, reporter: Reporter | None = None
) -> VerifyResult:
    reporter = reporter or NullReporter()
    checks = []
    with db.connect(autocommit=True) as conn:  # each dataset is one transaction of its own
        loaded = tables.loaded_files(conn, schema)
        total = sum(f.size for d in datasets for f in d.files)
        reporter.start("data:verify", "verifying", total, unit="bytes")
        for dataset in datasets:
            checks.append(_verify_dataset(conn, schema, dataset, loaded, reporter))
        reporter.done("data:verify")
    return VerifyResult(str(db.url), schema, checks)


def _verify_dataset(
    conn: psycopg.Connection[Any],
    schema: str,
    dataset: Dataset,
    loaded: dict[str, dict[str, Any]],
    reporter: Reporter,
) -> DatasetCheck:
    from psycopg import sql

    table = table_name(dataset.name)
    check = DatasetCheck(dataset.name, table, files=len(dataset.files))
    started = time.monotonic()
    current = {f.relative for f in dataset.files}
    check.gone_files = sorted(
        s for s, row in loaded.items() if row["dataset"] == dataset.name and s not in current
    )
    exists = tables.table_comment(conn, schema, table) is not None
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE src (_source text, _record integer, doc jsonb) ON COMMIT DROP"
        )
        cur.execute(
            "CREATE TEMP TABLE src_rejects (_source text, _record integer, reason text, raw bytea)"
            " ON COMMIT DROP"
        )
        for data_file in dataset.files:
            row = loaded.get(data_file.relative)
            if row is None:
                check.unloaded_files.append(data_file.relative)
            elif row["sha256"] != sha256_file(data_file.path):
                check.changed_files.append(data_file.relative)
            try:  # the same fallback as load: a record the database refuses is a reject
                rows, rejects = store_file(
                    conn,
                    cur,
                    sql.Identifier("src"),
                    data_file.relative,
                    data_file.path,
                    data_file.format,
                )
            except OSError as exc:
                raise unreadable(data_file, exc) from None
            copy_rejects(cur, sql.Identifier("src_rejects"), data_file.relative, rejects)
            check.records += rows + len(rejects)
            check.rejected += len(rejects)
            reporter.advance("data:verify", data_file.size)
        if not exists:
            check.missing = check.records
            check.seconds = time.monotonic() - started
            return check
        target = tables.ident(schema, table)
        sources = list(current | set(check.gone_files))
        check.rows = _count(cur, sql.SQL("SELECT count(*) FROM {}").format(target))
        check.missing = _count(
            cur,
            sql.SQL(
                "SELECT count(*) FROM src s WHERE NOT EXISTS (SELECT 1 FROM {} t"
                " WHERE t._source = s._source AND t._record = s._record)"
            ).format(target),
        )
        check.extra = _count(
            cur,
            sql.SQL(
                "SELECT count(*) FROM {} t WHERE NOT EXISTS (SELECT 1 FROM src s"
                " WHERE s._source = t._source AND s._record = t._record)"
            ).format(target),
        )
        check.changed = _count(
            cur,
            sql.SQL(
                "SELECT count(*) FROM {} t JOIN src s USING (_source, _record) WHERE t.doc <> s.doc"
            ).format(target),
        )
        check.rejects_differ = _count(
            cur,
            sql.SQL(
                "SELECT count(*) FROM (SELECT _source, _record, raw FROM {} WHERE _source = ANY(%s)"
                " EXCEPT SELECT _source, _record, raw FROM src_rejects) d1"
            ).format(tables.ident(schema, tables.REJECTS)),
            (sources,),
        ) + _count(
            cur,
            sql.SQL(
                "SELECT count(*) FROM (SELECT _source, _record, raw FROM src_rejects"
                " EXCEPT SELECT _source, _record, raw FROM {} WHERE _source = ANY(%s)) d2"
            ).format(tables.ident(schema, tables.REJECTS)),
            (sources,),
        )
        check.examples = _examples(cur, target) if not check.ok else []
    check.seconds = time.monotonic() - started
    return check


def _count(cur: psycopg.Cursor[Any], query: Any, args: Any = None) -> int:
    row = cur.execute(query, args).fetchone()
    return int(row[0]) if row else 0


def _examples(cur: psycopg.Cursor[Any], target: Any) -> list[str]:
    from psycopg import sql

    query = sql.SQL(
        "(SELECT 'missing', s._source, s._record FROM src s WHERE NOT EXISTS"
        " (SELECT 1 FROM {t} t WHERE t._source = s._source AND t._record = s._record) LIMIT {n})"
        " UNION ALL (SELECT 'extra', t._source, t._record FROM {t} t WHERE NOT EXISTS"
        " (SELECT 1 FROM src s WHERE s._source = t._source AND s._record = t._record) LIMIT {n})"
        " UNION ALL (SELECT 'changed', t._source, t._record FROM {t} t JOIN src s"
        " USING (_source, _record) WHERE t.doc <> s.doc LIMIT {n})"
    ).format(t=target, n=sql.Literal(EXAMPLES))
    return [f"{kind}: {source} record {record}" for kind, source, record in cur.execute(query)]
