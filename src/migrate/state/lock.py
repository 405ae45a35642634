"""The project lock: an OS file lock (`flock`) on the `.migrate` directory itself.

The kernel releases it when the holding process ends, however it ends, so a
lock is never stale. The lock is taken on the directory, not on a file in it:
`rm .migrate/lock` cannot release it (a file lock would stay on the unlinked
file while the next run locked a new one). After locking, the directory's inode
is checked against the path's, so a directory replaced meanwhile is not trusted.
`.migrate/lock` only tells the next caller who holds the lock (pid, command, since).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from pathlib import Path
from types import TracebackType

from migrate.errors import LockError

_ATTEMPTS = 3  # a directory replaced between open and flock: try again, then refuse


class ProjectLock:
    def __init__(self, state_dir: Path, command: str) -> None:
        self.state_dir = state_dir
        self.path = state_dir / "lock"
        self.command = command
        self._fd: int | None = None  # the locked directory
        self._info: int | None = None  # the holder's note, .migrate/lock

    def acquire(self) -> None:
        for _ in range(_ATTEMPTS):
            fd = self._open_directory()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise LockError(
                    f"another migrate run holds the lock ({_read_holder(self.path)})",
                    file=self.path,
                    hint="wait for that run to finish; the lock is released the moment its "
                    "process ends, even if it is killed",
                ) from None
            if _same_file(fd, self.state_dir):
                break
            os.close(fd)  # replaced after we opened it: what we locked is not the project's
        else:
            raise LockError(
                f"the state directory {self.state_dir} keeps being replaced",
                file=self.state_dir,
                hint="another process is removing or recreating .migrate/; stop it, then retry",
            )
        self._fd = fd
        try:
            info = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            self.release()
            raise LockError(
                f"cannot write the project lock: {exc.strerror}",
                file=self.path,
                hint="migrate keeps its state in .migrate/; make it a writable directory",
            ) from None
        os.ftruncate(info, 0)
        note = {
            "pid": os.getpid(),
            "command": self.command,
            "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        os.pwrite(info, json.dumps(note).encode(), 0)
        self._info = info

    def _open_directory(self) -> int:
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            return os.open(self.state_dir, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise LockError(
                f"cannot open the project lock: {exc.strerror}",
                file=self.state_dir,
                hint="migrate keeps its state in .migrate/; make it a writable directory",
            ) from None

    def release(self) -> None:
        if self._info is not None:
            try:
                os.ftruncate(self._info, 0)
            finally:
                os.close(self._info)
                self._info = None
        if self._fd is None:
            return
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


def _same_file(fd: int, path: Path) -> bool:
    try:
        now = os.stat(path)
    except OSError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)


def _read_holder(path: Path) -> str:
    try:
        info = json.loads(path.read_bytes()[:4096] or b"{}")
    except (OSError, ValueError):
        info = {}
    if not info or not isinstance(info, dict):
        return "pid unknown"
    text = f"pid {info.get('pid', '?')}, since {info.get('since', '?')}"
    if info.get("command"):
        text += f", `migrate {info['command']}`"
    return text
