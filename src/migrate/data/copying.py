"""Streaming a file's records into PostgreSQL with COPY.

JSON Lines go in COPY's binary format, a batch of lines at a time (`copy_jsonl`):
the client does no work per line in Python, so that two server backends parsing
jsonb are not held back by it. The other formats, and the strict second pass,
go record by record in the text format (`copy_records`).
"""

from __future__ import annotations

import queue
import struct
import threading
from collections.abc import Iterable, Sequence
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrate.data.records import BLOCK, RAW_LIMIT, Item, Reject, read, read_jsonl_batches

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


class TooBig(Exception):
    """A line longer than a COPY field can be: the strict pass decides what it is."""


class Refused(Exception):
    """The database refused a record of the first pass, run without a savepoint
    (`store_file(bare_first=True)`): the caller rolls its transaction back and stores
    the file again with `skip_fast=True`."""


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
    *,
    bare_first: bool = False,
    skip_fast: bool = False,
    digest: Any = None,
) -> tuple[int, list[Reject]]:
    """Write one file's records into `table`, inside the caller's transaction. A record
    the database refuses makes the file go again strictly, then record by record
    (each in a savepoint): a refused record becomes a reject with the server's reason,
    and the rest of the file goes on.

    `bare_first`: the first pass goes without a savepoint (two round trips less per
    file); a refusal then raises Refused, the transaction being lost. `skip_fast`:
    begin with the strict pass (after Refused). `digest`: a hashlib object that the
    first pass of a JSON Lines file feeds with the file's bytes (`copy_jsonl`); complete
    only when that pass returns."""
    import psycopg
    from psycopg import sql

    if bare_first and not skip_fast:
        try:
            if fmt == "jsonl":
                return copy_jsonl(cur, table, source, path, stop, digest)
            return copy_records(cur, table, source, read(path, fmt), stop)
        except TooBig:
            raise Refused() from None
        except psycopg.Error as exc:
            if refused(exc):
                raise Refused() from exc
            raise
    for strict in (False, True):
        if skip_fast and not strict:
            continue
        try:
            with conn.transaction():  # a savepoint
                if fmt == "jsonl" and not strict:
                    return copy_jsonl(cur, table, source, path, stop, digest)
                return copy_records(cur, table, source, read(path, fmt, strict=strict), stop)
        except TooBig:
            continue
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
    statement = sql.SQL("COPY {} (_source, _record, doc) FROM STDIN").format(table)
    with cur.copy(statement, writer=_writer(cur)) as copy:
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


_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)  # no flags, no extension
_TRAILER = struct.pack(">h", -1)
_FIELDS = struct.pack(">h", 3)
_RECORD_AND_DOC = struct.Struct(">iiB").pack  # _record's value; doc's size, jsonb version 1
_INT4 = struct.pack(">i", 4)
_PLUS_ONE = (1).__add__
MAX_FIELD = (1 << 30) - 2  # bytes of a field PostgreSQL reads (MaxAllocSize), less the version


def copy_jsonl(
    cur: psycopg.Cursor[Any],
    table: sql.Composable,
    source: str,
    path: Path,
    stop: threading.Event | None = None,
    digest: Any = None,
) -> tuple[int, list[Reject]]:
    """COPY a JSON Lines file into `table` (_source, _record, doc) in the binary format,
    its lines as `read_jsonl_fast` gives them; return the rows written and the rejects.
    Raises TooBig for a line longer than a field can be (the caller goes strict).
    `digest` (hashlib) is fed the file's bytes as they are read (`read_jsonl_batches`)."""
    from psycopg import sql

    name = source.encode("utf-8")
    head = _FIELDS + struct.pack(">i", len(name)) + name + _INT4
    rows = 0
    rejects: list[Reject] = []
    statement = sql.SQL("COPY {} (_source, _record, doc) FROM STDIN (FORMAT binary)").format(table)
    # a file of one batch gains nothing from a writer thread (one thread per COPY)
    queued = path.stat().st_size > BLOCK
    with cur.copy(statement, writer=_writer(cur, queued)) as copy:
        copy.write(_SIGNATURE)
        for batch in read_jsonl_batches(path, digest=digest):
            if stop is not None and stop.is_set():
                raise Stopped()
            rejects.extend(batch.rejects)
            if batch.docs:
                copy.write(binary_rows(head, batch.numbers, batch.docs))
                rows += len(batch.docs)
        copy.write(_TRAILER)
    return rows, rejects


def binary_rows(head: bytes, numbers: Sequence[int], docs: list[bytes]) -> bytes:
    """COPY binary tuples: `head` (field count, _source, _record's size), then for each
    doc its number and the doc as jsonb (version 1, then the JSON text). C loops only."""
    sizes = list(map(_PLUS_ONE, map(len, docs)))
    if max(sizes) > MAX_FIELD:
        raise TooBig()
    parts = [head] * (3 * len(docs))
    parts[1::3] = map(_RECORD_AND_DOC, numbers, sizes, repeat(1))
    parts[2::3] = docs
    return b"".join(parts)


def _writer(cur: psycopg.Cursor[Any], queued: bool = True) -> Any:
    """psycopg's queued writer (a thread sends while this one formats the next batch),
    its queue bounded: psycopg's holds up to 1024 chunks of 128 KiB, so memory would grow
    with the file up to 128 MiB while the server is slower than the reader."""
    from psycopg.copy import LibpqWriter, QueuedLibpqWriter

    if not queued:
        return LibpqWriter(cur)

    writer = QueuedLibpqWriter(cur)
    if isinstance(getattr(writer, "_queue", None), queue.Queue):
        writer._queue = queue.Queue(maxsize=QUEUE_CHUNKS)  # type: ignore[assignment]
    return writer


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
