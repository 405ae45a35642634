"""`migrate data load`: every dataset file into its table, one transaction per file.

A file's rows, its rejects and its `_migrate_files` row commit together, so a
load killed at any moment leaves each file either fully loaded or not at all,
and the next load finishes the job. An unchanged file (same SHA-256) is
skipped; a changed one is replaced atomically. Two workers load different
files at once, each on its own connection.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migrate.data import tables
from migrate.data.copying import copy_records, copy_rejects
from migrate.data.records import Reject, read
from migrate.errors import UserError
from migrate.names import table_name
from migrate.reporting import NullReporter, Reporter

if TYPE_CHECKING:
    import psycopg

    from migrate.data.database import Database
    from migrate.inventory import DataFile, Dataset, Inventory


@dataclass
class DatasetResult:
    dataset: str
    table: str
    files: int = 0
    records: int = 0  # source records of all its files (rows + rejects), after this load
    loaded: int = 0  # rows written by this load
    rejected: int = 0  # rejects written by this load
    skipped_files: int = 0  # unchanged since the last load
    seconds: float = 0.0  # time spent on its files (workers overlap)
    created: bool = False
    stale_files: list[str] = field(default_factory=list)  # loaded before, gone from the source

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "table": self.table,
            "files": self.files,
            "records": self.records,
            "loaded": self.loaded,
            "rejected": self.rejected,
            "skipped_files": self.skipped_files,
            "seconds": round(self.seconds, 3),
            "created": self.created,
            "stale_files": self.stale_files,
        }


@dataclass
class LoadResult:
    database: str  # masked
    schema: str
    created_schema: bool
    datasets: list[DatasetResult]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "database": self.database,
            "schema": self.schema,
            "datasets": [d.to_dict() for d in self.datasets],
        }


def select(inventory: Inventory, names: Sequence[str] | None) -> list[Dataset]:
    """The datasets named (all when none), or a UserError listing the known ones."""
    if not names:
        return list(inventory.datasets)
    known = {d.name: d for d in inventory.datasets}
    missing = [n for n in names if n not in known]
    if missing:
        raise UserError(
            f"no dataset {', '.join(map(repr, missing))} in {inventory.root / 'data'}",
            hint=f"datasets: {', '.join(known) or 'none'}",
        )
    return [known[n] for n in names]


def sha256_file(path: Any) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class _Job:
    dataset: Dataset
    table: str
    file: DataFile
    sha256: str


def load(
    db: Database,
    schema: str,
    datasets: Sequence[Dataset],
    *,
    reporter: Reporter | None = None,
    workers: int = 2,
) -> LoadResult:
    reporter = reporter or NullReporter()
    with db.connect(autocommit=True) as conn:
        tables.try_lock(conn, schema)  # held until this connection closes
        created_schema = tables.ensure_bookkeeping(conn, schema)
        loaded = tables.loaded_files(conn, schema)
        results: dict[str, DatasetResult] = {}
        jobs: list[_Job] = []
        for dataset in datasets:
            table = table_name(dataset.name)
            result = DatasetResult(dataset.name, table, files=len(dataset.files))
            result.created = tables.ensure_table(conn, schema, table, dataset.name)
            results[dataset.name] = result
            current = {f.relative for f in dataset.files}
            result.stale_files = sorted(
                s
                for s, row in loaded.items()
                if row["dataset"] == dataset.name and s not in current
            )
            for data_file in dataset.files:
                digest = sha256_file(data_file.path)
                row = loaded.get(data_file.relative)
                if row is not None and row["sha256"] == digest and row["table_name"] == table:
                    result.skipped_files += 1
                    result.records += int(row["records"]) + int(row["rejected"])
                else:
                    jobs.append(_Job(dataset, table, data_file, digest))
        for result in results.values():
            if result.stale_files:
                reporter.warn(
                    f"dataset {result.dataset}: {len(result.stale_files)} file(s) loaded before "
                    f"are gone from the source; their rows are kept ({result.stale_files[0]}, ...)"
                )
        total = sum(job.file.size for job in jobs)
        reporter.start("data:load", f"loading {len(jobs)} file(s)", total, unit="bytes")
        _run(db, schema, jobs, results, reporter, workers)
        reporter.done("data:load")
        for result in results.values():
            if tables.ensure_primary_key(conn, schema, result.table):
                reporter.info(f"indexed {schema}.{result.table} on (_source, _record)")
    return LoadResult(str(db.url), schema, created_schema, list(results.values()))


def _run(
    db: Database,
    schema: str,
    jobs: list[_Job],
    results: dict[str, DatasetResult],
    reporter: Reporter,
    workers: int,
) -> None:
    # biggest files first, so the two workers finish together
    jobs = sorted(jobs, key=lambda job: job.file.size, reverse=True)
    local = threading.local()
    connections: list[psycopg.Connection[Any]] = []
    guard = threading.Lock()

    def connection() -> psycopg.Connection[Any]:
        if not hasattr(local, "conn"):
            local.conn = db.connect(autocommit=True)  # load_file opens its transactions
            with guard:
                connections.append(local.conn)
        conn: psycopg.Connection[Any] = local.conn
        return conn

    def work(job: _Job) -> None:
        started = time.monotonic()
        rows, rejects = load_file(
            connection(), schema, job.table, job.dataset.name, job.file, job.sha256
        )
        with guard:
            result = results[job.dataset.name]
            result.seconds += time.monotonic() - started
            result.loaded += rows
            result.rejected += len(rejects)
            result.records += rows + len(rejects)
        reporter.advance("data:load", job.file.size)

    try:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                work(job)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for future in [pool.submit(work, job) for job in jobs]:
                    future.result()
    finally:
        for conn in connections:
            conn.close()


def load_file(
    conn: psycopg.Connection[Any],
    schema: str,
    table: str,
    dataset: str,
    data_file: DataFile,
    sha256: str,
) -> tuple[int, list[Reject]]:
    """Replace one file's rows in one transaction. Falls back to record-by-record
    inserts when the database refuses a record the readers let through."""
    import psycopg
    from psycopg import sql

    target = tables.ident(schema, table)
    for strict in (False, True):
        try:
            with conn.transaction(), conn.cursor() as cur:
                _forget(cur, schema, target, data_file.relative)
                items = read(data_file.path, data_file.format, strict=strict)
                rows, rejects = copy_records(cur, target, data_file.relative, items)
                _record(cur, schema, dataset, table, data_file, sha256, rows, rejects)
            return rows, rejects
        except psycopg.errors.DataError:
            pass  # a record the database refused: read strictly, then record by record
    with conn.transaction(), conn.cursor() as cur:
        _forget(cur, schema, target, data_file.relative)
        rows, rejects = 0, []
        insert = sql.SQL(
            "INSERT INTO {} (_source, _record, doc) VALUES (%s, %s, %s::jsonb)"
        ).format(target)
        for item in read(data_file.path, data_file.format):
            if type(item) is Reject:
                rejects.append(item)
                continue
            number, doc = item  # type: ignore[misc]
            try:
                with conn.transaction():
                    cur.execute(insert, (data_file.relative, number, doc.decode("utf-8")))
                rows += 1
            except psycopg.errors.DataError as exc:
                reason = str(exc).splitlines()[0]
                rejects.append(Reject(number, f"PostgreSQL refused it: {reason}", doc))
        _record(cur, schema, dataset, table, data_file, sha256, rows, rejects)
    return rows, rejects


def _forget(cur: psycopg.Cursor[Any], schema: str, target: Any, source: str) -> None:
    from psycopg import sql

    cur.execute(sql.SQL("DELETE FROM {} WHERE _source = %s").format(target), (source,))
    cur.execute(
        sql.SQL("DELETE FROM {} WHERE _source = %s").format(tables.ident(schema, tables.REJECTS)),
        (source,),
    )


def _record(
    cur: psycopg.Cursor[Any],
    schema: str,
    dataset: str,
    table: str,
    data_file: DataFile,
    sha256: str,
    rows: int,
    rejects: list[Reject],
) -> None:
    from psycopg import sql

    copy_rejects(cur, tables.ident(schema, tables.REJECTS), data_file.relative, rejects)
    cur.execute(
        sql.SQL(
            "INSERT INTO {} (_source, dataset, table_name, sha256, bytes, records, rejected,"
            " loaded_at) VALUES (%s, %s, %s, %s, %s, %s, %s, now())"
            " ON CONFLICT (_source) DO UPDATE SET dataset = excluded.dataset,"
            " table_name = excluded.table_name, sha256 = excluded.sha256, bytes = excluded.bytes,"
            " records = excluded.records, rejected = excluded.rejected, loaded_at = now()"
        ).format(tables.ident(schema, tables.FILES)),
        (data_file.relative, dataset, table, sha256, data_file.size, rows, len(rejects)),
    )
