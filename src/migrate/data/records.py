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
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

Doc = tuple[int, bytes]  # (record number, JSON text)


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
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if line.startswith(b"{") and line.endswith(b"}\n"):  # the common case, no copies
                yield (number, line[:-1])
                continue
            body = line.strip()
            if body[:1] == b"{" and body[-1:] == b"}":
                yield (number, line.rstrip(b"\n"))
            elif body:
                yield next(_checked(number, line.rstrip(b"\n")))


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
    if type(value) is not dict:
        return Reject(number, f"a JSON {_kind(value)}, not an object", line)
    return None


# --- JSON ------------------------------------------------------------------------------


def read_json(path: Path) -> Iterator[Item]:
    data = path.read_bytes()
    try:
        value = _exact_loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        yield Reject(1, f"invalid UTF-8 at byte {exc.start}: the whole file is rejected", data)
        return
    except (ValueError, NotRepresentable) as exc:
        yield Reject(1, f"invalid JSON, the whole file is rejected: {exc}", data)
        return
    if isinstance(value, list):
        yield from _records(value, "element")
    elif isinstance(value, dict):
        yield from _records([value], "document")
    else:
        yield Reject(1, f"the file holds a JSON {_kind(value)}, not an object or array", data)


# --- YAML ------------------------------------------------------------------------------


def read_yaml(path: Path) -> Iterator[Item]:
    import yaml

    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
        documents = [d for d in yaml.load_all(text, Loader=_exact_yaml_loader()) if d is not None]
    except UnicodeDecodeError as exc:
        yield Reject(1, f"invalid UTF-8 at byte {exc.start}: the whole file is rejected", data)
        return
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        yield Reject(1, f"invalid YAML, the whole file is rejected: {reason}", data)
        return
    if len(documents) == 1 and isinstance(documents[0], list):
        yield from _records(documents[0], "element")
    else:
        yield from _records(documents, "document")


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
    duplicates = sorted({name for name in header if header.count(name) > 1})
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
        elif any(_bad_text(field) for field in row):
            bad = "invalid UTF-8" if any(_has_surrogate(f) for f in row) else "a NUL character"
            yield Reject(number, f"the row contains {bad}", row_raw)
        else:
            yield (number, to_json(dict(zip(header, row, strict=True))).encode())


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def _bad_text(text: str) -> bool:
    return "\x00" in text or _has_surrogate(text)


# --- shared ----------------------------------------------------------------------------


def _records(values: Iterable[Any], what: str) -> Iterator[Item]:
    for number, value in enumerate(values, start=1):
        if not isinstance(value, dict):
            yield Reject(number, f"{what} {number} is a {_kind(value)}, not an object", _raw(value))
            continue
        try:
            yield (number, to_json(value).encode())
        except NotRepresentable as exc:
            yield Reject(number, str(exc), _raw(value))


def _raw(value: Any) -> bytes:
    """The best raw form of a parsed value (the file's own bytes for it are not kept)."""
    return json.dumps(value, default=str, ensure_ascii=False).encode("utf-8", "surrogatepass")


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


def to_json(value: Any) -> str:
    """Exact JSON text of a parsed value; raises NotRepresentable for what jsonb
    cannot hold (NUL, lone surrogates, NaN, infinities)."""
    parts: list[str] = []
    _emit(value, parts.append)
    return "".join(parts)


def _string(text: str) -> str:
    if "\x00" in text:
        raise NotRepresentable("contains a NUL character, which PostgreSQL cannot store")
    if _has_surrogate(text):
        raise NotRepresentable("contains invalid UTF-8 or a lone surrogate")
    return json.dumps(text, ensure_ascii=False)


def _emit(value: Any, out: Callable[[str], Any]) -> None:
    if value is None:
        out("null")
    elif value is True:
        out("true")
    elif value is False:
        out("false")
    elif isinstance(value, str):
        out(_string(value))
    elif isinstance(value, int):
        out(str(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise NotRepresentable(f"{value} is not a JSON number")
        out(str(value))
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise NotRepresentable(f"{value} is not a JSON number")
        out(repr(value))
    elif isinstance(value, dict):
        out("{")
        for index, (key, item) in enumerate(value.items()):
            if index:
                out(",")
            out(_string(key if isinstance(key, str) else _key_text(key)))
            out(":")
            _emit(item, out)
        out("}")
    elif isinstance(value, list | tuple | set | frozenset):
        out("[")
        for index, item in enumerate(value):
            if index:
                out(",")
            _emit(item, out)
        out("]")
    elif isinstance(value, dt.datetime | dt.date):
        out(_string(value.isoformat()))
    elif isinstance(value, bytes):
        out(_string(base64.b64encode(value).decode()))
    else:
        raise NotRepresentable(f"a value of type {type(value).__name__} has no JSON form")


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
