"""Secrets whose `str()` is masked, and masking of URLs that embed credentials."""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

_URL_PASSWORD = re.compile(
    r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<tail>@)"
)
# A password may hold spaces and `@` (a driver then refuses the URL): up to the first `@`
# that a host follows (a host, then `:`, `/`, a space, a quote or the end).
_URL_PASSWORD_SPACES = re.compile(
    r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^\n]*?)"
    r"(?P<tail>@(?=[^@\s/:'\"]+(?:[:/\s'\"]|$)))"
)
_KV_PASSWORD = re.compile(r"(?P<head>\b(?:password|passwd|pwd)\s*=\s*)(?P<pw>'[^']*'|\S+)", re.I)
_MIN_PIECE = 4  # a shorter known secret is left to the patterns: it would mask common words

# Every secret value this process has held (passwords of URLs, plain secrets), longest
# first: a library may quote a password out of its URL ("unexpected spaces found in
# \"...\""), where no pattern can recognise it.
_KNOWN: set[str] = set()


def remember(value: str) -> None:
    """Mask `value` (a URL's password, or a plain secret) wherever mask_text sees it."""
    if "://" in value:  # a URL: only its password is secret
        match = _URL_PASSWORD_SPACES.search(value) or _URL_PASSWORD.search(value)
        password = match["pw"] if match else ""
    else:
        password = value
    if password == MASK:
        return
    from urllib.parse import unquote

    for candidate in {password, unquote(password)}:
        # a driver that splits the URL at the password's first `@` quotes either side
        parts = candidate.split("@")
        pieces = [candidate]
        for i in range(1, len(parts)):
            pieces += ["@".join(parts[:i]), "@".join(parts[i:])]
        _KNOWN.update(piece for piece in pieces if len(piece) >= _MIN_PIECE)


def mask_text(text: str) -> str:
    """Mask passwords in URLs (`scheme://user:pw@host`), `password=...` pairs and
    every secret value remembered (a `Secret` remembers its own)."""
    text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK + m["tail"], text)
    text = _URL_PASSWORD_SPACES.sub(lambda m: m["head"] + MASK + m["tail"], text)
    text = _KV_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    for known in sorted(_KNOWN, key=len, reverse=True):
        text = text.replace(known, MASK)
    return text


class Secret:
    """A value that must never be printed, logged, journaled or rendered.

    `str()` and `repr()` show a masked form; `reveal()` gives the real value to
    the one place that needs it (a database driver, a registry login).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        remember(value)

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
