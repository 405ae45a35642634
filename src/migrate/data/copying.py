"""Streaming a file's records into PostgreSQL with COPY (text format)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from migrate.data.records import Item, Reject

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

FLUSH_BYTES = 1 << 20


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


def copy_records(
    cur: psycopg.Cursor[Any], table: sql.Composable, source: str, items: Iterable[Item]
) -> tuple[int, list[Reject]]:
    """COPY the records of one file into `table` (_source, _record, doc); return the
    number of rows written and the rejects (not written)."""
    from psycopg import sql

    prefix = escape(source.encode("utf-8")) + b"\t"
    rows = 0
    rejects: list[Reject] = []
    chunk: list[bytes] = []
    size = 0
    from psycopg.copy import QueuedLibpqWriter

    statement = sql.SQL("COPY {} (_source, _record, doc) FROM STDIN").format(table)
    # a writer thread sends while this one reads and formats the next chunk
    with cur.copy(statement, writer=QueuedLibpqWriter(cur)) as copy:
        for item in items:
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
            copy.write_row((source, reject.record, reject.reason, reject.raw))
