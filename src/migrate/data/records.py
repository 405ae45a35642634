"""Reading a data file into records (DESIGN 3.1, 3.5).

Each reader yields, in file order, either `(record, doc)` — the record number
and the record as JSON text, UTF-8 bytes, exact — or a `Reject` with the reason
and the raw bytes. Nothing is dropped silently: every record of the file is
one or the other (blank JSONL lines and empty YAML documents are not records).

Exactness: JSON Lines are validated and then sent as they are, so the
database parses the numbers (big integers, tiny floats stay exact). Other
formats are parsed with exact numbers (`Decimal`, `int`) and written back as
JSON by `to_json`.

Rules worth knowing:
- JSONL: the record number is the physical line number (lines end at LF).
- JSON array / YAML list: the 1-based index; one object or document: 1;
  several YAML documents: the document number.
- CSV: the data row number (1 = first row after the header); every field is
  a string; a row whose field count differs from the header's is rejected
  whole (raw = the row's exact bytes); duplicate header names reject the file.
- YAML timestamps become ISO 8601 strings, binary becomes base64, keys that
  are not strings become their YAML text; NaN and infinities are rejected.
- A NUL character anywhere (PostgreSQL cannot store it) or invalid UTF-8
  rejects the record.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import json
import operator
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from migrate.errors import UserError

Doc = tuple[int, bytes]  # (record number, JSON text)

RAW_LIMIT = 256 << 20  # raw bytes kept of one reject (bytea holds at most 1 GiB)
CSV_FIELD_LIMIT = 256 << 20  # characters of one CSV field (a jsonb string holds < 256 MiB)


@dataclass(frozen=True)
class Reject:
    record: int
    reason: str
    raw: bytes


Item = Doc | Reject


class NotRepresentable(ValueError):
    """A parsed value that JSON (or PostgreSQL's jsonb) cannot hold."""


def read(path: Path, fmt: str, *, strict: bool = True) -> Iterator[Item]:
    """The file's records. `strict=False` lets JSON Lines that look like objects
    through unparsed (PostgreSQL parses them anyway); the loader reads the file
    again strictly if the database refuses one."""
    if fmt == "jsonl" and not strict:
        return read_jsonl_fast(path)
    return READERS[fmt](path)


# --- JSON Lines ------------------------------------------------------------------------

_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000", re.I)


def read_jsonl(path: Path) -> Iterator[Item]:
    import orjson

    loads = orjson.loads
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip(b"\n")
            if not line.strip():
                continue  # a blank line is not a record
            try:
                value = loads(line)
            except orjson.JSONDecodeError as exc:
                item = _jsonl_slow(number, line, str(exc))
                if item is not None:
                    yield item
                    continue
                value = {}  # valid for the exact parser: an object (checked there)
            if type(value) is not dict:
                yield Reject(number, f"a JSON {_kind(value)}, not an object", line)
            elif b"u0000" in line and _NUL_ESCAPE.search(line):
                yield Reject(number, "contains a NUL character (\\u0000)", line)
            else:
                yield (number, line)


def read_jsonl_fast(path: Path) -> Iterator[Item]:
    """Lines whose first and last non-blank bytes are `{` and `}` go through as
    they are: if the database accepts them as jsonb they are exact objects. Any
    other line is checked like `read_jsonl` does."""
    for batch in read_jsonl_batches(path):
        yield from batch.items()


#: bytes read at a time by `read_jsonl_batches`: a batch and its framed rows stay in the
#: CPU's cache, and the GIL is held for shorter stretches while one is framed (1 MiB
#: took 5% more client CPU and left the backends waiting more: benchmarks/data_load.py)
BLOCK = 256 << 10


@dataclass
class Batch:
    """The records of a run of whole JSON Lines (`read_jsonl_batches`): `docs[i]` is
    record `numbers[i]`; `rejects` are the lines of the run that are no objects."""

    numbers: Sequence[int]
    docs: list[bytes]
    rejects: list[Reject]

    def items(self) -> Iterator[Item]:
        """The batch as `read` yields it: records and rejects in file order."""
        if not self.rejects:
            yield from zip(self.numbers, self.docs, strict=True)
            return
        merged: list[Item] = [*zip(self.numbers, self.docs, strict=True), *self.rejects]
        merged.sort(key=_item_number)
        yield from merged


def _item_number(item: Item) -> int:
    return item.record if type(item) is Reject else item[0]  # type: ignore[index]


_FIRST = operator.itemgetter(0)
_LAST = operator.itemgetter(-1)
_OBJECT_BOUNDS = ({ord("{")}, {ord("}")})


def read_jsonl_batches(path: Path, block: int = BLOCK, digest: Any = None) -> Iterator[Batch]:
    """`read_jsonl_fast` in batches of about `block` bytes of whole lines, with no work
    per line in Python when every line of the batch is `{...}` (the common case): the
    lines are cut and checked by C loops over the whole batch. Memory holds a batch,
    or one line when a line is longer. `digest` (a hashlib object) is fed every byte
    read: once the batches are exhausted, it is the hash of exactly what they hold."""
    number = 1
    pending: list[bytes] = []  # the start of a line that goes on in the next block
    with path.open("rb") as handle:
        while data := handle.read(block):
            if digest is not None:
                digest.update(data)  # hashlib releases the GIL on a buffer this big
            if b"\n" not in data:
                pending.append(data)
                continue
            lines = data.split(b"\n")
            rest = lines.pop()
            if pending:
                pending.append(lines[0])
                lines[0] = b"".join(pending)
                pending = []
            if rest:
                pending.append(rest)
            yield _batch(number, lines)
            number += len(lines)
    if pending:
        yield _batch(number, [b"".join(pending)])  # the last line has no newline


def _batch(number: int, lines: list[bytes]) -> Batch:
    """The records of `lines` (without their newlines), the first being line `number`."""
    try:
        fast = (set(map(_FIRST, lines)), set(map(_LAST, lines))) == _OBJECT_BOUNDS
    except IndexError:  # a blank line
        fast = False
    if fast:
        return Batch(range(number, number + len(lines)), lines, [])
    numbers: list[int] = []
    docs: list[bytes] = []
    rejects: list[Reject] = []
    for offset, line in enumerate(lines):
        body = line.strip()
        if body[:1] == b"{" and body[-1:] == b"}":
            numbers.append(number + offset)
            docs.append(line)
        elif body:
            item = next(_checked(number + offset, line))
            if type(item) is Reject:
                rejects.append(item)
            else:
                numbers.append(number + offset)
                docs.append(line)
    return Batch(numbers, docs, rejects)


def _checked(number: int, line: bytes) -> Iterator[Item]:
    import orjson

    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        reject = _jsonl_slow(number, line, str(exc))
        yield reject if reject is not None else (number, line)
        return
    if type(value) is not dict:
        yield Reject(number, f"a JSON {_kind(value)}, not an object", line)
    else:
        yield (number, line)


def _jsonl_slow(number: int, line: bytes, fast_error: str) -> Reject | None:
    """orjson refused the line; the exact parser decides (it reads numbers of any
    size). Returns a Reject, or None when the line is a valid object."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Reject(number, f"invalid UTF-8 at byte {exc.start}", line)
    try:
        value = _exact_loads(text)
        check_value(value)
    except NotRepresentable as exc:
        return Reject(number, str(exc), line)
    except ValueError:
        return Reject(number, f"invalid JSON: {fast_error}", line)
    except RecursionError:
        # nested deeper than Python's parser goes: a streaming parser decides, and
        # PostgreSQL then takes it or refuses it (the loader turns that into a reject)
        return _deep_jsonl(number, line)
    if type(value) is not dict:
        return Reject(number, f"a JSON {_kind(value)}, not an object", line)
    return None


# --- JSON ------------------------------------------------------------------------------


def read_json(path: Path) -> Iterator[Item]:
    """A JSON file, streamed: an array yields its elements one at a time, so memory
    does not grow with the file. The file is checked first (a fast pass that builds
    nothing): a file that is not valid JSON is one reject, raw = the file."""
    import ijson

    invalid = _json_invalid(path)
    if invalid is not None:
        yield invalid
        return
    number = 0
    with path.open("rb") as handle:
        _skip_bom(handle)
        try:
            for kind, value in _values(ijson.basic_parse(handle, use_float=False)):
                if kind == "element":
                    number += 1
                    yield _record(number, value, "element", fast=True)
                elif isinstance(value, dict):
                    yield _record(1, value, "document", fast=True)
                else:
                    yield Reject(
                        1,
                        f"the file holds a JSON {_kind(value)}, not an object or array",
                        whole_file(path),
                    )
        except ijson.JSONError as exc:  # valid a moment ago: the file changed meanwhile
            raise UserError(
                f"the file changed while it was being read: {_ijson_reason(exc)}",
                file=path,
                hint="run the command again once nothing writes to the data files",
            ) from None


def _json_invalid(path: Path) -> Reject | None:
    import ijson

    with path.open("rb") as handle:
        _skip_bom(handle)
        try:
            for _event in ijson.basic_parse(handle, use_float=False):
                pass
        except ijson.JSONError as exc:
            reason = _ijson_reason(exc)
            if "invalid bytes in UTF8" in reason:
                return Reject(1, "invalid UTF-8: the whole file is rejected", whole_file(path))
            return Reject(
                1, f"invalid JSON, the whole file is rejected: {reason}", whole_file(path)
            )
    return None


def _deep_jsonl(number: int, line: bytes) -> Reject | None:
    import io

    import ijson

    try:
        first = next(ijson.basic_parse(io.BytesIO(line), use_float=False))[0]
        for _event in ijson.basic_parse(io.BytesIO(line), use_float=False):
            pass
    except (ijson.JSONError, StopIteration) as exc:
        return Reject(number, f"invalid JSON: {_ijson_reason(exc)}", line)
    if first != "start_map":
        return Reject(number, "a JSON array, not an object", line)
    return None


def _ijson_reason(exc: BaseException) -> str:
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__


def _skip_bom(handle: IO[bytes]) -> None:
    if handle.read(3) != b"\xef\xbb\xbf":
        handle.seek(0)


def _values(events: Iterable[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
    """Values from ijson's basic events, built without recursion (any depth):
    ("element", value) for each element of a top-level array, else one
    ("document", value)."""
    stack: list[Any] = []
    keys: list[Any] = []
    streaming = False
    for event, value in events:
        if event == "map_key":
            keys[-1] = value
            continue
        if event == "start_map" or event == "start_array":
            if not stack and event == "start_array":
                streaming = True
            stack.append({} if event == "start_map" else [])
            keys.append(None)
            continue
        if event == "end_map" or event == "end_array":
            value = stack.pop()
            keys.pop()
            if not stack:
                if not streaming:
                    yield ("document", value)
                continue
        if not stack:
            yield ("document", value)
        elif streaming and len(stack) == 1:
            yield ("element", value)
        elif type(stack[-1]) is dict:
            stack[-1][keys[-1]] = value
        else:
            stack[-1].append(value)


def whole_file(path: Path) -> bytes:
    """A file's bytes for a whole-file reject (at most RAW_LIMIT + 1 of them: more cannot
    be stored; `copy_rejects` says where raw was cut)."""
    with path.open("rb") as handle:
        return handle.read(RAW_LIMIT + 1)


# --- YAML ------------------------------------------------------------------------------


def read_yaml(path: Path) -> Iterator[Item]:
    """Raw bytes of a rejected document or list element are its own source text
    (from the parser's marks), so they are the same in every process."""
    import yaml

    data = path.read_bytes()
    documents: list[tuple[Any, Any]] = []  # (value, node)
    try:
        text = data.decode("utf-8-sig")
        loader = _exact_yaml_loader()(text)
        try:
            while loader.check_node():
                node = loader.get_node()
                value = loader.construct_document(node)
                if value is not None:
                    documents.append((value, node))
        finally:
            loader.dispose()
    except UnicodeDecodeError as exc:
        yield Reject(1, f"invalid UTF-8 at byte {exc.start}: the whole file is rejected", data)
        return
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        yield Reject(1, f"invalid YAML, the whole file is rejected: {reason}", data)
        return
    except RecursionError:
        yield Reject(1, "invalid YAML, the whole file is rejected: nested too deeply", data)
        return

    def source(node: Any) -> bytes:
        return text[node.start_mark.index : node.end_mark.index].encode("utf-8")

    if len(documents) == 1 and isinstance(documents[0][0], list):
        value, node = documents[0]
        nodes = node.value if isinstance(node, yaml.SequenceNode) else []
        for number, element in enumerate(value, start=1):
            raw = source(nodes[number - 1]) if len(nodes) == len(value) else None
            yield _record(number, element, "element", raw)
    else:
        for number, (value, node) in enumerate(documents, start=1):
            yield _record(number, value, "document", source(node))


def _exact_yaml_loader() -> type[Any]:
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class ExactLoader(base):  # type: ignore[misc,valid-type]
        pass

    def exact_float(loader: Any, node: Any) -> Any:
        text = str(loader.construct_scalar(node)).replace("_", "").lower()
        if text in (".inf", "+.inf", "-.inf", ".nan"):
            return float(text.replace(".", "").replace("nan", "nan"))  # rejected by to_json
        try:
            return Decimal(text)
        except ArithmeticError:
            return float(text)

    ExactLoader.add_constructor("tag:yaml.org,2002:float", exact_float)
    return ExactLoader


# --- CSV -------------------------------------------------------------------------------


def read_csv(path: Path) -> Iterator[Item]:
    data = path.read_bytes()
    text = data.decode("utf-8", errors="surrogateescape")
    if text.startswith("\ufeff"):
        text = text[1:]
    consumed: list[str] = []

    def lines() -> Iterator[str]:
        for line in text.splitlines(keepends=True):
            consumed.append(line)
            yield line

    def raw() -> bytes:
        chunk = "".join(consumed).encode("utf-8", errors="surrogateescape")
        consumed.clear()
        return chunk

    csv.field_size_limit(sys.maxsize)  # our own limit below: one reject per row, not per file
    reader = csv.reader(lines(), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        yield Reject(1, f"unreadable CSV header, the whole file is rejected: {exc}", data)
        return
    if header is None:
        return
    raw()
    if any(_bad_text(name) for name in header):
        yield Reject(1, "the header has invalid UTF-8 or a NUL: the whole file is rejected", data)
        return
    duplicates = sorted(name for name, count in Counter(header).items() if count > 1)
    if duplicates:
        yield Reject(
            1,
            f"duplicate column name(s) {', '.join(map(repr, duplicates))} in the header: "
            "the whole file is rejected",
            data,
        )
        return
    number = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            number += 1
            rest = raw() + "".join(lines()).encode("utf-8", errors="surrogateescape")
            yield Reject(number, f"unreadable CSV from here to the end of the file: {exc}", rest)
            return
        row_raw = raw()
        if not row:
            continue  # a blank line is not a row
        number += 1
        if len(row) != len(header):
            yield Reject(
                number, f"the row has {len(row)} fields, the header {len(header)}", row_raw
            )
        elif any(len(field) > CSV_FIELD_LIMIT for field in row):
            index, size = next((i, len(f)) for i, f in enumerate(row) if len(f) > CSV_FIELD_LIMIT)
            yield Reject(
                number,
                f"field {index + 1} ({header[index]!r}) has {size} characters, over the limit of "
                f"{CSV_FIELD_LIMIT}",
                row_raw,
            )
        elif any(_bad_text(field) for field in row):
            bad = "invalid UTF-8" if any(_has_surrogate(f) for f in row) else "a NUL character"
            yield Reject(number, f"the row contains {bad}", row_raw)
        else:
            yield (number, to_json(dict(zip(header, row, strict=True))).encode())


_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_surrogate(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def _bad_text(text: str) -> bool:
    return "\x00" in text or _has_surrogate(text)


# --- shared ----------------------------------------------------------------------------


def _record(
    number: int, value: Any, what: str, raw: bytes | None = None, *, fast: bool = False
) -> Item:
    """One parsed record, or its reject; `raw` is its source text when known. `fast`:
    the value holds only what a JSON parser makes (dict, list, str, int, Decimal,
    bool, None), so orjson may write it."""
    if not isinstance(value, dict):
        reason = f"{what} {number} is a {_kind(value)}, not an object"
        return Reject(number, reason, raw if raw is not None else _raw(value))
    if fast:
        text = _fast_json(value)
        if text is not None:
            return (number, text)
    try:
        return (number, to_json(value).encode())
    except NotRepresentable as exc:
        return Reject(number, str(exc), raw if raw is not None else _raw(value))


def _decimal_fragment(value: Any) -> Any:
    import orjson

    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(str(value))
    raise TypeError(type(value).__name__)


def _fast_json(value: dict[str, Any]) -> bytes | None:
    """orjson's text of a parsed JSON object, or None where `to_json` must decide (a
    NUL, a lone surrogate, an integer beyond 64 bits, nesting deeper than 255)."""
    import orjson

    try:
        text = orjson.dumps(value, default=_decimal_fragment)
    except (orjson.JSONEncodeError, TypeError):
        return None
    if b"u0000" in text and _NUL_ESCAPE.search(text):
        return None
    return text


def _raw(value: Any) -> bytes:
    """The best raw form of a parsed value when its source bytes are not known:
    its JSON text, NaN and NUL written as they can be, sets sorted (deterministic)."""
    return to_json(value, strict=False).encode("utf-8", "surrogatepass")


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    if isinstance(value, int | float | Decimal):
        return "number"
    return type(value).__name__


def _reject_constant(name: str) -> Any:
    raise NotRepresentable(f"{name} is not a JSON number")


def _exact_loads(text: str) -> Any:
    return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)


def check_value(value: Any) -> None:
    """Raise NotRepresentable when a parsed value holds a NUL or a lone surrogate."""
    to_json(value)


def to_json(value: Any, *, strict: bool = True) -> str:
    """Exact JSON text of a parsed value, at any depth (no recursion); raises
    NotRepresentable for what jsonb cannot hold (NUL, lone surrogates, NaN,
    infinities). A set becomes an array sorted by its elements' JSON text.
    `strict=False` writes those anyway (for a reject's raw bytes)."""
    parts: list[str] = []
    out = parts.append
    stack: list[list[Any]] = []  # [iterator, is a mapping, first item still to come]
    pending, has_pending = value, True
    while True:
        if has_pending:
            has_pending = False
            if isinstance(pending, dict):
                out("{")
                stack.append([iter(pending.items()), True, True])
            elif isinstance(pending, list | tuple):
                out("[")
                stack.append([iter(pending), False, True])
            elif isinstance(pending, set | frozenset):
                items = sorted(to_json(item, strict=strict) for item in pending)
                out("[" + ",".join(items) + "]")
            else:
                _scalar(pending, out, strict)
        if not stack:
            return "".join(parts)
        frame = stack[-1]
        try:
            item = next(frame[0])
        except StopIteration:
            out("}" if frame[1] else "]")
            stack.pop()
            continue
        if not frame[2]:
            out(",")
        frame[2] = False
        if frame[1]:
            key, item = item
            out(_string(key if isinstance(key, str) else _key_text(key), strict))
            out(":")
        pending, has_pending = item, True


def _string(text: str, strict: bool = True) -> str:
    if strict and "\x00" in text:
        raise NotRepresentable("contains a NUL character, which PostgreSQL cannot store")
    if strict and _has_surrogate(text):
        raise NotRepresentable("contains invalid UTF-8 or a lone surrogate")
    return json.dumps(text, ensure_ascii=False)


def _scalar(value: Any, out: Callable[[str], Any], strict: bool) -> None:
    if value is None:
        out("null")
    elif value is True:
        out("true")
    elif value is False:
        out("false")
    elif isinstance(value, str):
        out(_string(value, strict))
    elif isinstance(value, int):
        out(str(value))
    elif isinstance(value, Decimal):
        if strict and not value.is_finite():
            raise NotRepresentable(f"{value} is not a JSON number")
        out(str(value))
    elif isinstance(value, float):
        if strict and (value != value or value in (float("inf"), float("-inf"))):
            raise NotRepresentable(f"{value} is not a JSON number")
        out(repr(value))
    elif isinstance(value, dt.datetime | dt.date):
        out(_string(value.isoformat()))
    elif isinstance(value, bytes):
        out(_string(base64.b64encode(value).decode()))
    elif strict:
        raise NotRepresentable(f"a value of type {type(value).__name__} has no JSON form")
    else:
        out(_string(str(value), strict))


def _key_text(key: Any) -> str:
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, dt.datetime | dt.date):
        return key.isoformat()
    return str(key)


READERS: dict[str, Callable[[Path], Iterator[Item]]] = {
    "jsonl": read_jsonl,
    "json": read_json,
    "yaml": read_yaml,
    "csv": read_csv,
}
