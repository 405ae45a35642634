"""The project lock: an OS file lock (`flock`) on `.migrate/lock`.

The kernel releases it when the holding process ends, however it ends, so a
lock is never stale. The file's content (pid, command, since) is only there
to tell the next caller who holds it.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from pathlib import Path
from types import TracebackType

from migrate.errors import LockError


class ProjectLock:
    def __init__(self, state_dir: Path, command: str) -> None:
        self.path = state_dir / "lock"
        self.command = command
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise LockError(
                f"cannot open the project lock: {exc.strerror}",
                file=self.path,
                hint="migrate keeps its state in .migrate/; make it a writable directory",
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise LockError(
                f"another migrate run holds the lock ({holder})",
                file=self.path,
                hint="wait for that run to finish; the lock is released the moment its "
                "process ends, even if it is killed",
            ) from None
        os.ftruncate(fd, 0)
        info = {
            "pid": os.getpid(),
            "command": self.command,
            "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> ProjectLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "pid unknown"
    text = f"pid {info.get('pid', '?')}, since {info.get('since', '?')}"
    if info.get("command"):
        text += f", `migrate {info['command']}`"
    return text
