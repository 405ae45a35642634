"""JSON Lines in batches for the binary COPY (issue 14): the same records and rejects,
in the same order, as reading line by line, whatever the block size; and the binary
tuples carry each record's number and exact bytes."""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migrate.data import copying
from migrate.data.records import Item, _checked, read_jsonl_batches, read_jsonl_fast


def line_by_line(path: Path) -> Iterator[Item]:
    """What the loader's first pass read before batches (one Python step per line)."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if line.startswith(b"{") and line.endswith(b"}\n"):
                yield (number, line[:-1])
                continue
            body = line.strip()
            if body[:1] == b"{" and body[-1:] == b"}":
                yield (number, line.rstrip(b"\n"))
            elif body:
                yield next(_checked(number, line.rstrip(b"\n")))


LINES = st.sampled_from(
    [
        b'{"a": 1}',
        b'{"tab": "x\\ty", "back": "\\\\"}',
        b"",
        b"   ",
        b'  {"padded": true}  ',
        b'{"crlf": 1}\r',
        b"[1, 2]",
        b'"a string"',
        b"12",
        b"{not json}",
        b'{"a": 1} {"b": 2}',
        b"\xff\xfe",
        b'{"nul": "\\u0000"}',
        b"{",
        b"}",
        b"{}",
        '{"é": "ü"}'.encode(),
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(LINES, max_size=40),
    st.booleans(),
    st.integers(min_value=1, max_value=64),
)
def test_batches_give_what_line_by_line_reading_gives(
    lines: list[bytes], final_newline: bool, block: int
) -> None:
    content = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.jsonl"
        path.write_bytes(content)
        expected = list(line_by_line(path))
        batched = [item for batch in read_jsonl_batches(path, block) for item in batch.items()]
        assert batched == expected
        assert list(read_jsonl_fast(path)) == expected
        for batch in read_jsonl_batches(path, block):
            assert len(batch.numbers) == len(batch.docs)


def test_a_line_longer_than_many_blocks_is_one_record(tmp_path: Path) -> None:
    long = b'{"x": "' + b"y" * 10_000 + b'"}'
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"n": 1}\n' + long + b"\n\n" + long)
    items = [item for batch in read_jsonl_batches(path, 7) for item in batch.items()]
    assert items == [(1, b'{"n": 1}'), (2, long), (4, long)]


def parse_binary(data: bytes) -> list[tuple[bytes, int, bytes]]:
    """COPY binary tuples of (_source text, _record int4, doc jsonb) back to values."""
    rows = []
    position = 0
    while position < len(data):
        (fields,) = struct.unpack_from(">h", data, position)
        assert fields == 3
        position += 2
        values = []
        for _ in range(3):
            (size,) = struct.unpack_from(">i", data, position)
            position += 4
            values.append(data[position : position + size])
            position += size
        source, record, doc = values
        assert doc[:1] == b"\x01"  # jsonb version 1
        rows.append((source, struct.unpack(">i", record)[0], doc[1:]))
    return rows


def test_binary_rows_hold_each_number_and_the_exact_bytes() -> None:
    name = "events/ä b%s.jsonl".encode()
    head = struct.pack(">hi", 3, len(name)) + name + struct.pack(">i", 4)
    docs = [b'{"a": 1}', b'{"t": "\t\\n"}', '{"é": 2}'.encode()]
    data = copying.binary_rows(head, [3, 5, 2_000_000_000], docs)
    assert parse_binary(data) == [
        (name, 3, docs[0]),
        (name, 5, docs[1]),
        (name, 2_000_000_000, docs[2]),
    ]


def test_a_doc_too_big_for_a_field_goes_to_the_strict_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(copying, "MAX_FIELD", 8)
    with pytest.raises(copying.TooBig):
        copying.binary_rows(b"", [1, 2], [b"{}", b'{"long": 1}'])
