"""Printing: Rich on stdout for results, stderr for progress, warnings and errors;
JSON only on stdout with `--output json`."""

from __future__ import annotations

import enum
import sys
import threading
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID


class Output(enum.StrEnum):
    table = "table"
    json = "json"


# Set by a command that prints JSON, so errors are reported as JSON on stdout too.
state: dict[str, bool] = {"json": False}


# Columns when the stream is not a terminal (a pipeline log, a file): lines are never
# wrapped at Rich's default 80 columns; tables take only the width they need.
PIPE_WIDTH = 10_000


def out() -> Console:
    return _console(sys.stdout, stderr=False)


def err() -> Console:
    return _console(sys.stderr, stderr=True)


@cache
def _console(stream: object, *, stderr: bool) -> Console:
    """One console per stream (the test runner swaps sys.stdout): as wide as the terminal,
    or `PIPE_WIDTH` when the stream is not one, so a log gets whole lines."""
    from rich.console import Console

    isatty = getattr(stream, "isatty", None)
    terminal = bool(isatty and isatty())
    return Console(stderr=stderr, highlight=False, width=None if terminal else PIPE_WIDTH)


#: variables that make Rich treat a stream that is not a terminal as one (colours), or
#: take it for a notebook's
_RICH_TERMINAL_VARIABLES = (
    "FORCE_COLOR",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "JUPYTER_COLUMNS",
    "JUPYTER_LINES",
    "DATABRICKS_RUNTIME_VERSION",
)


def escape(text: str) -> str:
    """rich.markup.escape, without loading Rich: `text` read as itself in markup (a
    bracket that would open a tag, and the backslashes before it, escaped)."""
    import re

    def escape_backslashes(match: re.Match[str]) -> str:
        backslashes, tag = match.groups()
        return f"{backslashes}{backslashes}\\{tag}"

    text = re.sub(r"(\\*)(\[[a-z#/@][^[]*?])", escape_backslashes, text)
    if text.endswith("\\") and not text.endswith("\\\\"):
        return text + "\\"
    return text


def print_markup(markup: str) -> None:
    """`out().print(markup)`, byte for byte: when stdout is not a terminal and Rich would
    write the text as it reads (plain printable ASCII, no emoji code, lines shorter than
    `PIPE_WIDTH`), it is written without loading Rich (a `plan` into a pipe or a file);
    anything else goes to Rich."""
    text = _plain_text(markup) if _plain(sys.stdout) else None
    if text is None:
        out().print(markup)
        return
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def print_err(markup: str) -> None:
    """`err().print(markup, soft_wrap=True)`, byte for byte, the way `print_markup` writes
    stdout: the lines a command writes on stderr before its work (a warning, the database
    it uses) do not wait for Rich to load."""
    text = _plain_text(markup) if _plain(sys.stderr) else None
    if text is None:
        err().print(markup, soft_wrap=True)
        return
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _plain(stream: Any) -> bool:
    """Whether Rich would write to `stream` (stdout or stderr) without styles: not a
    terminal, and nothing in the environment says to treat it as one."""
    import os

    isatty = getattr(stream, "isatty", None)
    try:
        if isatty is None or isatty():
            return False
    except ValueError:  # a closed stream: Rich's business
        return False
    return not any(name in os.environ for name in _RICH_TERMINAL_VARIABLES)


def _plain_text(markup: str) -> str | None:
    """The text Rich writes for `markup` on a stream without styles (rich.markup.render:
    tags dropped, `\\[` read as `[`, backslashes before a tag halved), or None when Rich
    might write something else (an emoji code, a character it changes or measures, a
    line it would wrap)."""
    import re

    chunks: list[str] = []
    position, opened = 0, 0
    for match in re.finditer(r"((\\*)\[([a-z#/@][^[]*?)])", markup):
        full, escapes, tag = match.groups()
        start, end = match.span()
        if start > position:
            chunks.append(markup[position:start])
        if escapes:
            backslashes, escaped = divmod(len(escapes), 2)
            if backslashes:
                chunks.append("\\" * backslashes)
            if escaped:  # an escaped tag: its text, read as such
                chunks.append(full[len(escapes) :])
                position = end
                continue
        if tag.startswith("@") or (tag.startswith("/") and (tag != "/" or not opened)):
            return None  # a handler, a named or unmatched close: Rich's to read (or refuse)
        opened += -1 if tag == "/" else 1
        position = end
    if position < len(markup):
        chunks.append(markup[position:])
    chunks = [c.replace("\\[", "[") for c in chunks]
    text = "".join(chunks)
    if not all(" " <= c <= "~" or c == "\n" for c in text):
        return None
    if any(len(line) >= PIPE_WIDTH for line in text.split("\n")):
        return None
    emoji = re.compile(r"(:(\S*?)(?:(?:\-)(emoji|text))?:)")  # rich._emoji_replace's
    candidates = [m.group(2).lower() for c in chunks for m in emoji.finditer(c)]
    if candidates:
        try:
            from rich._emoji_codes import EMOJI
        except ImportError:  # Rich's table moved: let Rich say
            return None
        if any(name in EMOJI for name in candidates):
            return None
    return text


def print_json(document: dict[str, Any]) -> None:
    import json  # here: `--help` never needs it

    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def warn(message: str) -> None:
    print_err(f"[yellow]warning:[/] {escape(message)}")


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


class _Bar:
    """A bar not drawn yet (a plain class: a dataclass costs an exec at import)."""

    __slots__ = ("bytes", "completed", "description", "total")

    def __init__(self, description: str, total: float | None, is_bytes: bool) -> None:
        self.description, self.total, self.bytes = description, total, is_bytes
        self.completed = 0.0


class ConsoleReporter:
    """A `Reporter` that draws Rich progress bars on stderr.

    Safe to call from several threads (verify checks its hosts in parallel): one lock
    guards the single live display and the table of bars, so the threads share one
    display instead of each starting its own.

    The display appears `SHOW_AFTER` seconds after the first bar starts: work that ends
    sooner (a no-op `images build`) draws nothing and never loads Rich's progress module.
    Until then the bars are kept here, and drawn as they stand when the display appears."""

    SHOW_AFTER = 0.3  # seconds

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._pending: dict[str, _Bar] = {}  # bars not drawn yet, by key
        self._timer: threading.Timer | None = None
        self._lock = threading.RLock()

    def _bar(self) -> Progress:
        if self._progress is None:
            from rich.progress import BarColumn, Progress, TimeElapsedColumn

            self._progress = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                _amount_column()(),
                TimeElapsedColumn(),
                console=err(),
                transient=True,
            )
            self._progress.start()
        return self._progress

    def start(
        self, key: str, description: str, total: float | None = None, unit: str = "items"
    ) -> None:
        with self._lock:
            if self._progress is not None:
                self._add(key, _Bar(description, total, unit == "bytes"))
                return
            self._pending[key] = _Bar(description, total, unit == "bytes")
            if self._timer is None:
                self._timer = threading.Timer(self.SHOW_AFTER, self._show)
                self._timer.daemon = True
                self._timer.start()

    def _show(self) -> None:
        """Draw the display, with the bars started so far (on the timer's thread)."""
        with self._lock:
            self._timer = None  # the next bar started with nothing drawn schedules another
            if self._progress is not None or not self._pending:
                return  # closed meanwhile (close() clears the pending bars), or all done
            for key, pending in self._pending.items():
                self._add(key, pending)
            self._pending.clear()

    def _add(self, key: str, bar: _Bar) -> None:
        progress = self._bar()
        self._tasks[key] = progress.add_task(bar.description, total=bar.total, bytes=bar.bytes)
        if bar.completed:
            progress.advance(self._tasks[key], bar.completed)

    def advance(self, key: str, amount: float = 1) -> None:
        with self._lock:
            if key in self._pending:
                self._pending[key].completed += amount
            elif key in self._tasks:
                self._bar().advance(self._tasks[key], amount)

    def done(self, key: str, message: str | None = None) -> None:
        with self._lock:
            self._pending.pop(key, None)
            if key in self._tasks:
                self._bar().remove_task(self._tasks.pop(key))
            if message:
                self.info(message)

    def info(self, message: str) -> None:
        with self._lock:
            print_err(escape(message))

    def warn(self, message: str) -> None:
        with self._lock:
            warn(message)

    def close(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._pending.clear()
            if self._progress is not None:
                self._progress.stop()
                self._progress = None
                self._tasks.clear()

    def __enter__(self) -> ConsoleReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()  # the progress display ends, however the work ended


def _amount_column() -> type[Any]:
    from rich.progress import (
        DownloadColumn,
        MofNCompleteColumn,
        ProgressColumn,
        TransferSpeedColumn,
    )
    from rich.text import Text

    class Amount(ProgressColumn):
        """`3/7` for items; `12.3/130.0 MB 45.6 MB/s` for bytes."""

        def __init__(self) -> None:
            super().__init__()
            self._count = MofNCompleteColumn()
            self._size = DownloadColumn()
            self._speed = TransferSpeedColumn()

        def render(self, task: Any) -> Text:
            if task.fields.get("bytes"):
                return Text.assemble(self._size.render(task), " ", self._speed.render(task))
            return self._count.render(task)

    return Amount
