"""YAML loading that remembers where every value came from.

`load()` returns the plain data together with a map from key paths
(`("phases", 0, "tasks", 2, "with")`) to 1-based line numbers, so validation
errors can name the file, the line and the key path. Duplicate keys, which
PyYAML would silently overwrite, are errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate.errors import UserError

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Located:
    """YAML data plus the line of each node."""

    data: Any
    file: Path
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """Line of the deepest node on `loc` that exists in the file."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), None)


def format_loc(loc: Sequence[str | int]) -> str:
    """`("phases", 0, "tasks", 1, "with")` -> `phases[0].tasks[1].with`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def load(path: Path, *, error: type[UserError] = UserError, what: str = "file") -> Located:
    """Read and parse one YAML document from `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} not found", file=path) from None
    except UnicodeDecodeError as exc:
        raise error(f"not valid UTF-8 (byte {exc.start})", file=path) from None
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror}", file=path) from None
    return parse(text, path, error=error)


def parse(text: str, file: Path, *, error: type[UserError] = UserError) -> Located:
    import yaml

    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_cls(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Located(None, file, {})
        lines: dict[Loc, int] = {}
        _walk(node, (), lines, file, error)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context and exc.context.startswith("while scanning a simple key"):
            mark = exc.context_mark or mark  # the key missing its ':' is on this line
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        if isinstance(exc, yaml.constructor.ConstructorError) and "tag" in problem:
            tag = (exc.problem or "").rpartition("tag ")[2] or "a tag"
            tag = tag.replace("tag:yaml.org,2002:", "!!")  # as it is written in the file
            raise error(
                f"the YAML tag {tag} is not allowed: migrate reads plain YAML (no tags that "
                "make objects)",
                file=file,
                line=line,
                hint="remove the tag (`!!python/...`, `!name`) and write the value as a plain "
                "string, number, list or mapping",
            ) from None
        if mark is not None and _char_at(text, mark.line, mark.column) == "\t":
            raise error(
                "tab characters are not allowed in YAML indentation",
                file=file,
                line=line,
                hint="indent with spaces (your editor can convert tabs to spaces)",
            ) from None
        raise error(
            f"malformed YAML: {problem}",
            file=file,
            line=line,
            hint="fix the YAML syntax at that line (indentation, a missing ':' or quote)",
        ) from None
    except yaml.YAMLError as exc:
        raise error(f"malformed YAML: {exc}", file=file) from None
    finally:
        loader.dispose()
    return Located(data, file, lines)


def _char_at(text: str, line: int, column: int) -> str:
    """The character at a 0-based (line, column) of `text`, or ""."""
    lines = text.splitlines()
    if 0 <= line < len(lines) and 0 <= column < len(lines[line]):
        return lines[line][column]
    return ""


def _walk(node: Any, loc: Loc, lines: dict[Loc, int], file: Path, error: type[UserError]) -> None:
    import yaml

    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[object, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise error(
                    "a mapping key must be a plain value",
                    file=file,
                    line=key_node.start_mark.line + 1,
                    key=format_loc(loc),
                )
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key == "<<":  # merge key: its values are walked where they are defined
                continue
            if key in seen:
                raise error(
                    f"duplicate key {key!r} (first at line {seen[key]})",
                    file=file,
                    line=line,
                    key=format_loc((*loc, key)),
                    hint="a key may appear once per mapping; remove one of them",
                )
            seen[key] = line
            child = (*loc, key)
            lines[child] = line
            _walk(value_node, child, lines, file, error)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*loc, index), lines, file, error)


def validate(model: type[Any], located: Located, *, error: type[UserError] = UserError) -> Any:
    """Validate `located.data` against a pydantic model; errors name file, line and key."""
    from pydantic import ValidationError

    if located.data is None:
        raise error(
            "the file is empty", file=located.file, hint="see the docs/ reference for its keys"
        )
    try:
        return model.model_validate(located.data)
    except ValidationError as exc:
        raise validation_error(exc, located, model, error=error) from None


def validation_error(
    exc: Any,
    located: Located,
    model: type[Any],
    *,
    error: type[UserError] = UserError,
    prefix: Loc = (),
) -> UserError:
    """Turn a pydantic ValidationError into one UserError listing every problem.

    `prefix` is where in the file the validated value sits (its errors' paths are
    relative to it).
    """
    from migrate.secrets import mask_text

    problems: list[tuple[Loc, int | None, str]] = []
    for item in exc.errors(include_url=False):
        rel: Loc = tuple(p for p in item["loc"] if not _is_union_tag(p))
        loc = (*prefix, *rel)
        message = _describe(item, model, rel)
        problems.append((loc, located.line_of(loc), mask_text(message)))
    first_loc, first_line, first_msg = problems[0]
    message = first_msg
    if len(problems) > 1:
        rest = "\n".join(
            f"  {located.file}:{line}: {format_loc(loc)}: {msg}" for loc, line, msg in problems[1:]
        )
        message = f"{first_msg}\n  and {len(problems) - 1} more problem(s):\n{rest}"
    return error(message, file=located.file, line=first_line, key=format_loc(first_loc) or None)


def _is_union_tag(part: object) -> bool:
    # pydantic adds the union member's name (e.g. "function-after[...]") to loc paths
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def _describe(item: dict[str, Any], model: type[Any], loc: Loc) -> str:
    kind = item["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        text = "unknown key; remove it or check its spelling"
        if allowed:
            text += f" (allowed here: {', '.join(allowed)})"
        return text
    if kind == "missing":
        return "required key is missing"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"expected a mapping (key: value lines), got {_kind(item.get('input'))}"
    message = str(item["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    elif message.startswith("Assertion failed, "):
        message = message[len("Assertion failed, ") :]
    if kind.endswith("_type") or kind.endswith("_parsing") or kind == "literal_error":
        value = item.get("input")
        if not isinstance(value, dict | list):
            message += f" (got {value!r})"
        else:
            message += f" (got a {'mapping' if isinstance(value, dict) else 'list'})"
    return message


def _allowed_keys(model: type[Any], loc: Loc) -> list[str]:
    """Walk pydantic model fields along `loc` and list the keys allowed at its end."""
    import typing

    from pydantic import BaseModel

    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            args = typing.get_args(current)
            current = args[0] if args else None
        elif isinstance(current, type) and issubclass(current, BaseModel):
            found = None
            for name, info in current.model_fields.items():
                if part in (name, info.alias):
                    found = info.annotation
            current = found
        else:
            args = typing.get_args(current)
            current = args[-1] if args else None
        if current is None:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [info.alias or name for name, info in current.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    import types
    import typing

    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    return annotation


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)
