"""Secrets whose `str()` is masked, and masking of URLs that embed credentials."""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

_URL_PASSWORD = re.compile(
    r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<tail>@)"
)
_KV_PASSWORD = re.compile(r"(?P<head>\b(?:password|passwd|pwd)\s*=\s*)(?P<pw>'[^']*'|\S+)", re.I)


def mask_text(text: str) -> str:
    """Mask passwords in URLs (`scheme://user:pw@host`) and `password=...` pairs."""
    text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK + m["tail"], text)
    return _KV_PASSWORD.sub(lambda m: m["head"] + MASK, text)


class Secret:
    """A value that must never be printed, logged, journaled or rendered.

    `str()` and `repr()` show a masked form; `reveal()` gives the real value to
    the one place that needs it (a database driver, a registry login).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def masked(self) -> str:
        masked = mask_text(self._value)
        return masked if masked != self._value else MASK

    def __str__(self) -> str:
        return self.masked()

    def __repr__(self) -> str:
        return f"Secret({self.masked()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        def validate(value: Any) -> Secret:
            if isinstance(value, Secret):
                return value
            if isinstance(value, str):
                return cls(value)
            raise ValueError("expected a string")

        return core_schema.no_info_plain_validator_function(
            validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda v: v.masked(), when_used="always"
            ),
        )
