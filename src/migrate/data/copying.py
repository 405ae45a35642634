"""Streaming a file's records into PostgreSQL with COPY (text format)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrate.data.records import RAW_LIMIT, Item, Reject, read

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

FLUSH_BYTES = 1 << 20
QUEUE_CHUNKS = 32  # of psycopg's 128 KiB: at most 4 MiB waiting for the server


def escape(value: bytes) -> bytes:
    """Escape a field for COPY's text format (backslash, tab, newline, carriage return)."""
    if b"\\" in value:
        value = value.replace(b"\\", b"\\\\")
    if b"\t" in value:
        value = value.replace(b"\t", b"\\t")
    if b"\n" in value:
        value = value.replace(b"\n", b"\\n")
    if b"\r" in value:
        value = value.replace(b"\r", b"\\r")
    return value


class Stopped(Exception):
    """The load was asked to stop (Ctrl-C): the file in flight is rolled back."""


def refused(exc: BaseException) -> bool:
    """Whether PostgreSQL refused a record for what it holds: a data exception
    (class 22), a program limit (class 54: nested too deep, too big) or out of memory
    for it. Anything else (a lost connection, a cancel) is not the record's fault."""
    import psycopg

    state = getattr(exc, "sqlstate", None) or ""
    return isinstance(exc, psycopg.Error) and (state[:2] in ("22", "54") or state == "53200")


def store_file(
    conn: psycopg.Connection[Any],
    cur: psycopg.Cursor[Any],
    table: sql.Composable,
    source: str,
    path: Path,
    fmt: str,
    stop: threading.Event | None = None,
) -> tuple[int, list[Reject]]:
    """Write one file's records into `table`, inside the caller's transaction. A record
    the database refuses makes the file go again strictly, then record by record
    (each in a savepoint): a refused record becomes a reject with the server's reason,
    and the rest of the file goes on."""
    import psycopg
    from psycopg import sql

    for strict in (False, True):
        try:
            with conn.transaction():  # a savepoint
                return copy_records(cur, table, source, read(path, fmt, strict=strict), stop)
        except psycopg.Error as exc:
            if not refused(exc):
                raise
    insert = sql.SQL("INSERT INTO {} (_source, _record, doc) VALUES (%s, %s, %s::jsonb)").format(
        table
    )
    rows, rejects = 0, []
    for item in read(path, fmt):
        if stop is not None and stop.is_set():
            raise Stopped()
        if type(item) is Reject:
            rejects.append(item)
            continue
        number, doc = item  # type: ignore[misc]
        try:
            with conn.transaction():
                cur.execute(insert, (source, number, doc.decode("utf-8")))
            rows += 1
        except psycopg.Error as exc:
            if not refused(exc):
                raise
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            rejects.append(Reject(number, f"PostgreSQL refused it: {reason}", doc))
    return rows, rejects


def copy_records(
    cur: psycopg.Cursor[Any],
    table: sql.Composable,
    source: str,
    items: Iterable[Item],
    stop: threading.Event | None = None,
) -> tuple[int, list[Reject]]:
    """COPY the records of one file into `table` (_source, _record, doc); return the
    number of rows written and the rejects (not written). Raises Stopped once `stop`
    is set."""
    from psycopg import sql

    prefix = escape(source.encode("utf-8")) + b"\t"
    rows = 0
    rejects: list[Reject] = []
    chunk: list[bytes] = []
    size = 0
    from psycopg.copy import QueuedLibpqWriter

    statement = sql.SQL("COPY {} (_source, _record, doc) FROM STDIN").format(table)
    # a writer thread sends while this one reads and formats the next chunk
    writer = QueuedLibpqWriter(cur)
    if isinstance(getattr(writer, "_queue", None), queue.Queue):
        # psycopg queues up to 1024 chunks of 128 KiB: memory would grow with the
        # file up to 128 MiB while the server is slower than the reader
        writer._queue = queue.Queue(maxsize=QUEUE_CHUNKS)  # type: ignore[assignment]
    with cur.copy(statement, writer=writer) as copy:
        for item in items:
            if stop is not None and stop.is_set():
                raise Stopped()
            if type(item) is Reject:
                rejects.append(item)
                continue
            number, doc = item  # type: ignore[misc]
            line = b"%s%d\t%s\n" % (prefix, number, escape(doc))
            chunk.append(line)
            size += len(line)
            rows += 1
            if size >= FLUSH_BYTES:
                copy.write(b"".join(chunk))
                chunk.clear()
                size = 0
        if chunk:
            copy.write(b"".join(chunk))
    return rows, rejects


def copy_rejects(
    cur: psycopg.Cursor[Any], table: sql.Composable, source: str, rejects: list[Reject]
) -> None:
    from psycopg import sql

    if not rejects:
        return
    statement = sql.SQL("COPY {} (_source, _record, reason, raw) FROM STDIN").format(table)
    with cur.copy(statement) as copy:
        for reject in rejects:
            raw, reason = reject.raw, reject.reason
            if len(raw) > RAW_LIMIT:  # a bytea holds 1 GiB at most; keep the start
                raw, reason = raw[:RAW_LIMIT], f"{reason} (raw: its first {RAW_LIMIT} bytes)"
            copy.write_row((source, reject.record, reason, raw))
