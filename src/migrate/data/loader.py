"""`migrate data load`: every dataset file into its table, one transaction per file.

A file's rows, its rejects and its `_migrate_files` row commit together, so a
load killed at any moment leaves each file either fully loaded or not at all,
and the next load finishes the job. An unchanged file (same SHA-256) is
skipped; a changed one is replaced atomically. `WORKERS` workers load different
files at once, each on its own connection.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migrate.data import tables
from migrate.data.copying import Refused, copy_rejects, store_file
from migrate.data.records import Reject
from migrate.data.selection import sha256_file, unreadable
from migrate.names import table_name
from migrate.reporting import NullReporter, Reporter

if TYPE_CHECKING:
    import psycopg

    from migrate.data.database import Database
    from migrate.inventory import DataFile, Dataset

#: files loaded at once, each on its own connection (`data load --jobs`). The server
#: parses the jsonb; the workers only cut lines and frame them. Two would match two
#: server cores, but a backend then waits for its client a fifth of the time (the
#: workers share one interpreter): four keep the server's cores busy (docs/data.md).
WORKERS = 4

#: bytes of files to load that make another worker worth its connection (a few ms to
#: open): a load of a few small files opens one or two, not `WORKERS`
BYTES_PER_WORKER = 512 << 10

#: the interpreter's thread switch interval while the workers run (Python's default is
#: 5 ms): a worker that has bytes for its backend gets the interpreter sooner from one
#: that is framing lines, so its backend waits less (benchmarks/data_load.py)
SWITCH_INTERVAL_S = 0.0005


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
    pending: int = 0  # files still to load (after Ctrl-C: not loaded)

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


@dataclass(frozen=True)
class _Job:
    dataset: Dataset
    table: str
    file: DataFile
    sha256: str | None  # None: `_migrate_files` does not know the file; hashed as it loads
    fresh: bool = False  # its table was created by this load and never held the file


def load(
    db: Database,
    schema: str,
    datasets: Sequence[Dataset],
    *,
    reporter: Reporter | None = None,
    workers: int = WORKERS,
) -> LoadResult:
    reporter = reporter or NullReporter()
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    with db.connect(autocommit=True) as conn:
        tables.try_lock(conn, schema)  # held until this connection closes
        try:
            return _load(db, conn, schema, datasets, reporter, workers)
        finally:
            with contextlib.suppress(Exception):  # closing the connection releases it too
                tables.unlock(conn, schema)


def _load(
    db: Database,
    conn: psycopg.Connection[Any],
    schema: str,
    datasets: Sequence[Dataset],
    reporter: Reporter,
    workers: int,
) -> LoadResult:
    created_schema = tables.ensure_bookkeeping(conn, schema)
    loaded = tables.loaded_files(conn, schema)
    results: dict[str, DatasetResult] = {}
    jobs: list[_Job] = []
    for dataset in datasets:
        table = table_name(dataset.name)
        result = DatasetResult(dataset.name, table, files=len(dataset.files))
        result.created = tables.ensure_table(conn, schema, table, dataset.name)
        if not result.created and tables.ensure_primary_key(conn, schema, table):
            # a first load was cut short: the index makes each file's DELETE cheap
            reporter.info(f"indexed {schema}.{table} on (_source, _record)")
        results[dataset.name] = result
        current = {f.relative for f in dataset.files}
        result.stale_files = sorted(
            s for s, row in loaded.items() if row["dataset"] == dataset.name and s not in current
        )
        for data_file in dataset.files:
            row = loaded.get(data_file.relative)
            if row is None:  # nothing to compare with: the file is hashed as it loads
                jobs.append(_Job(dataset, table, data_file, None, fresh=result.created))
                continue
            digest = sha256_file(data_file.path)
            if row["sha256"] == digest and row["table_name"] == table:
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
    try:
        rolled_back = _run(db, schema, jobs, results, reporter, workers)
    except BaseException:
        with contextlib.suppress(Exception):  # the error that stopped the load matters more
            _flush(conn)
        raise
    _flush(conn)
    if rolled_back is not None:
        partial = LoadResult(str(db.url), schema, created_schema, list(results.values()))
        raise LoadInterrupted(partial, rolled_back)
    reporter.done("data:load")
    for result in results.values():
        if tables.ensure_primary_key(conn, schema, result.table):
            reporter.info(f"indexed {schema}.{result.table} on (_source, _record)")
    return LoadResult(str(db.url), schema, created_schema, list(results.values()))


def _flush(conn: psycopg.Connection[Any]) -> None:
    """Wait until the files' commits are on disk. The workers commit without waiting
    (synchronous_commit off: one disk flush per file would make many small files slow);
    a transaction that takes an ID commits with the session's own setting, which flushes
    every commit before it. Until then a crash of the server can lose the last files,
    each with its `_migrate_files` row, so the next load loads them again."""
    with conn.transaction():
        conn.execute("SELECT txid_current()")


class LoadInterrupted(KeyboardInterrupt):
    """Ctrl-C during a load. The files loaded before it are kept (each committed on
    its own); the files in flight were rolled back. A KeyboardInterrupt, so that
    everything around the load stops as it would on Ctrl-C."""

    def __init__(self, result: LoadResult, rolled_back: list[str]) -> None:
        self.result = result
        self.rolled_back = rolled_back
        super().__init__("interrupted")

    @property
    def files_loaded(self) -> int:
        """Files loaded (and committed) by this run before the interrupt."""
        return sum(d.files - d.skipped_files - d.pending for d in self.result.datasets)


def _run(
    db: Database,
    schema: str,
    jobs: list[_Job],
    results: dict[str, DatasetResult],
    reporter: Reporter,
    workers: int,
) -> list[str] | None:
    """Load the jobs with up to `workers` workers; None when all are done, or (after
    Ctrl-C) the files that were in flight and rolled back."""
    # biggest files first, so the workers finish together
    jobs = sorted(jobs, key=lambda job: job.file.size, reverse=True)
    worth = -(-sum(job.file.size for job in jobs) // BYTES_PER_WORKER)  # rounded up
    workers = max(1, min(workers, len(jobs), worth))
    local = threading.local()
    connections: list[psycopg.Connection[Any]] = []
    guard = threading.Lock()
    stop = threading.Event()
    rolled_back: list[str] = []

    def connection() -> psycopg.Connection[Any]:
        if not hasattr(local, "conn"):
            local.conn = db.connect(autocommit=True)  # load_file opens its transactions
            local.conn.execute("SET synchronous_commit = off")  # `_flush` waits at the end
            with guard:
                connections.append(local.conn)
        conn: psycopg.Connection[Any] = local.conn
        return conn

    def work(job: _Job) -> None:
        if stop.is_set():
            return
        started = time.monotonic()
        try:
            rows, rejects = load_file(
                connection(),
                schema,
                job.table,
                job.dataset.name,
                job.file,
                job.sha256,
                stop,
                fresh=job.fresh,
            )
        except BaseException:
            if stop.is_set():
                with guard:
                    rolled_back.append(job.file.relative)
                return
            raise
        with guard:
            result = results[job.dataset.name]
            result.seconds += time.monotonic() - started
            result.loaded += rows
            result.rejected += len(rejects)
            result.records += rows + len(rejects)
            result.pending -= 1
        reporter.advance("data:load", job.file.size)

    for job in jobs:
        results[job.dataset.name].pending += 1
    pool = ThreadPoolExecutor(max_workers=workers)
    _quick_switches(+1)
    try:
        futures = [pool.submit(work, job) for job in jobs]
        for future in futures:
            future.result()
    except KeyboardInterrupt:
        stop.set()  # workers stop at the next record; queued files never start
        for conn in list(connections):
            with contextlib.suppress(Exception):  # the connection is closed below anyway
                conn.cancel_safe(timeout=2)  # a statement in progress ends now
        pool.shutdown(wait=True, cancel_futures=True)
        return sorted(rolled_back)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _quick_switches(-1)
        for conn in connections:
            conn.close()
    return None


_switching = {"loads": 0, "interval": 0.0}
_switching_lock = threading.Lock()


def _quick_switches(change: int) -> None:
    """`SWITCH_INTERVAL_S` while at least one load runs in this process (+1 when one
    starts, -1 when it ends); the interval found before the first, after the last."""
    with _switching_lock:
        if change > 0 and _switching["loads"] == 0:
            _switching["interval"] = sys.getswitchinterval()
            sys.setswitchinterval(min(_switching["interval"], SWITCH_INTERVAL_S))
        _switching["loads"] += change
        if change < 0 and _switching["loads"] == 0:
            sys.setswitchinterval(_switching["interval"])


def load_file(
    conn: psycopg.Connection[Any],
    schema: str,
    table: str,
    dataset: str,
    data_file: DataFile,
    sha256: str | None,
    stop: threading.Event | None = None,
    *,
    fresh: bool = False,
) -> tuple[int, list[Reject]]:
    """Replace one file's rows in one transaction. A record the database refuses
    becomes a reject (`store_file`); `stop` set rolls the file back (Stopped).
    `sha256` None: hash the file here, a JSON Lines file as its bytes stream into COPY
    (no read of its own; the hash is then of exactly the bytes loaded).
    `fresh`: the table holds no row of this file (it was created by this load, and
    `_migrate_files` does not know the file), so there is nothing to delete; the table
    has no index yet, and the DELETE would read all of it, once per file."""
    target = tables.ident(schema, table)
    for again in (False, True):  # again: the database refused a record the first time
        digest = None
        known = sha256
        if known is None:
            if data_file.format == "jsonl" and not again:
                digest = hashlib.sha256()  # complete when the first pass returns
            else:
                known = sha256_file(data_file.path)
        try:
            with conn.transaction(), conn.cursor() as cur:
                if not fresh:
                    _forget(cur, schema, target, data_file.relative)
                try:
                    rows, rejects = store_file(
                        conn,
                        cur,
                        target,
                        data_file.relative,
                        data_file.path,
                        data_file.format,
                        stop,
                        bare_first=True,
                        skip_fast=again,
                        digest=digest,
                    )
                except OSError as exc:
                    raise unreadable(data_file, exc) from None
                if digest is not None:
                    known = digest.hexdigest()
                assert known is not None
                _record(cur, schema, dataset, table, data_file, known, rows, rejects)
        except Refused:
            continue
        return rows, rejects
    raise AssertionError("store_file(skip_fast=True) never raises Refused")


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
