"""`print_err` (the lines a command writes on stderr before its work: warnings, the
database it uses) writes what Rich's `err().print(..., soft_wrap=True)` writes, byte for
byte, without Rich when stderr is not a terminal, and leaves the rest to Rich."""

from __future__ import annotations

import io
import sys

import pytest
from rich.console import Console

from migrate.cli import output
from migrate.cli.output import PIPE_WIDTH, escape, print_err
from tests.unit.test_plan_speed_final import _TEXTS


def _rich(markup: str) -> str:
    buffer = io.StringIO()
    Console(file=buffer, highlight=False, width=PIPE_WIDTH).print(markup, soft_wrap=True)
    return buffer.getvalue()


class _Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


@pytest.mark.parametrize("raw", _TEXTS)
def test_print_err_writes_what_rich_writes(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    for markup in (escape(raw), f"[yellow]warning:[/] {escape(raw)}", raw):
        pipe = _Pipe()
        monkeypatch.setattr(sys, "stderr", pipe)
        output._console.cache_clear()  # the console of this stream, made anew
        try:
            print_err(markup)
        except Exception as exc:  # markup Rich refuses: Rich's own error, as before
            assert type(exc).__module__.startswith("rich"), exc
            continue
        finally:
            output._console.cache_clear()
        assert pipe.getvalue() == _rich(markup), markup


def test_print_err_on_a_terminal_is_richs(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(_Pipe):
        def isatty(self) -> bool:
            return True

    for name in ("FORCE_COLOR", "NO_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setattr(sys, "stderr", Terminal())
    monkeypatch.setattr(output, "_plain_text", lambda markup: pytest.fail("asked on a tty"))
    output._console.cache_clear()
    try:
        print_err("[yellow]warning:[/] x")
    finally:
        output._console.cache_clear()
    assert sys.stderr.getvalue() == "\x1b[33mwarning:\x1b[0m x\n"  # Rich's, in colour
