"""The SQLite journal in `.migrate/state.db`: runs, steps with receipts, task status.

A step is journaled `started` before its change is applied and `done` with
its receipt after; a crash in between leaves `started`, and the next apply
runs the (idempotent) change again. `rolled_back` steps are history.

One `Journal` may be used from several threads (apply runs the independent changes
of a task concurrently): its one connection is shared, and a lock serialises every
statement and transaction on it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrate.errors import UserError

SCHEMA_VERSION = 1
WITNESS = "journal.id"  # beside state.db: the id of the journal that belongs here

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    verb TEXT NOT NULL,
    phase INTEGER,
    pid INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'running',   -- running | ok | failed | superseded
    started_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE TABLE IF NOT EXISTS steps (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    phase INTEGER NOT NULL,
    task TEXT NOT NULL,
    action TEXT NOT NULL,
    change_key TEXT NOT NULL,
    op TEXT NOT NULL,
    resource TEXT NOT NULL,
    summary TEXT NOT NULL,
    status TEXT NOT NULL,                     -- started | done | failed | rolled_back
    receipt TEXT,
    error TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX IF NOT EXISTS steps_by_key ON steps (change_key, status);
CREATE INDEX IF NOT EXISTS steps_by_phase ON steps (phase, status);
CREATE TABLE IF NOT EXISTS tasks (
    task TEXT PRIMARY KEY,
    phase INTEGER NOT NULL,
    applied_at TEXT,
    verified_at TEXT,
    done INTEGER NOT NULL DEFAULT 0
);
"""


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Step:
    id: int
    run_id: int
    phase: int
    task: str
    action: str
    change_key: str
    op: str
    resource: str
    summary: str
    status: str
    receipt: dict[str, Any] | None
    error: str | None
    started_at: str
    finished_at: str | None


@dataclass(frozen=True)
class TaskState:
    task: str
    phase: int
    applied_at: str | None
    verified_at: str | None
    done: bool


class Journal:
    """The journal of one project. Its identity (an id kept in the database and in
    `.migrate/journal.id` beside it, and the file's device and inode seen at open) is
    checked before a run is closed, so a journal deleted or replaced mid-run fails
    that run loudly instead of leaving no record."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()  # one statement or transaction at a time
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(
                f"cannot create the state directory {path.parent}: {exc.strerror}",
                hint="migrate keeps its journal there; remove or rename what is in the way",
            ) from None
        if not path.exists():
            refuse_replaced(path)  # before connecting creates it
        try:
            self._db = sqlite3.connect(
                path, isolation_level=None, timeout=30, check_same_thread=False
            )
            recorded = refuse_replaced(path, self._db)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._check_version()
            self.id = self._identity(recorded)
        except sqlite3.OperationalError as exc:
            if _is_readonly(exc):
                raise readonly_error(path) from None
            raise self._unreadable(exc) from None
        except sqlite3.DatabaseError as exc:
            raise self._unreadable(exc) from None
        self._inode = _inode(path)
        self._db.row_factory = sqlite3.Row

    def _query(self, statement: str, args: tuple[Any, ...] = ()) -> list[Any]:
        """The rows of a read, fetched whole while holding the lock."""
        with self._lock:
            return self._db.execute(statement, args).fetchall()

    def _unreadable(self, exc: Exception) -> UserError:
        return UserError(
            f"the state journal cannot be read: {exc}",
            file=self.path,
            hint="restore it from a backup; deleting it forgets what was applied",
        )

    def _identity(self, recorded: str | None) -> str:
        """This journal's id; a new journal gets one, and `journal.id` records it."""
        row = self._db.execute("SELECT value FROM meta WHERE key='journal_id'").fetchone()
        if row is None:
            journal_id = uuid.uuid4().hex
            self._db.execute("INSERT INTO meta VALUES ('journal_id', ?)", (journal_id,))
        else:
            journal_id = str(row[0])
        if recorded != journal_id:
            witness = self.path.parent / WITNESS
            tmp = witness.with_name(f".{WITNESS}.tmp")
            try:
                tmp.write_text(journal_id + "\n", encoding="utf-8")
                os.replace(tmp, witness)
            except PermissionError:
                raise readonly_error(self.path) from None
        return journal_id

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self._db.execute(
                "INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        elif int(row[0]) > SCHEMA_VERSION:
            raise UserError(
                f"the state journal was written by a newer migrate (schema {row[0]})",
                file=self.path,
                hint="upgrade migrate",
            )

    def check_identity(self) -> None:
        """Refuse to go on when the journal file was deleted or replaced since it was
        opened: what this run did would be journaled nowhere."""
        try:
            now_inode = _inode(self.path)
        except FileNotFoundError:
            now_inode = None
        if now_inode != self._inode:
            what = "deleted" if now_inode is None else "replaced"
            raise UserError(
                f"the state journal was {what} while migrate was running: what this run "
                "did is not recorded",
                file=self.path,
                hint="restore state.db from a backup, then run `migrate plan` to see what is "
                "in place; never delete .migrate/state.db while migrate runs",
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield from self._transaction()

    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _is_readonly(exc):
                raise readonly_error(self.path) from None
            raise
        try:
            yield self._db
        except sqlite3.OperationalError as exc:
            self._db.execute("ROLLBACK")
            if _is_readonly(exc):
                raise readonly_error(self.path) from None
            raise
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if _is_readonly(exc):
                raise readonly_error(self.path) from None
            raise

    # runs
    def start_run(self, verb: str, phase: int | None) -> int:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO runs (verb, phase, pid, started_at) VALUES (?, ?, ?, ?)",
                (verb, phase, os.getpid(), now()),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def finish_run(self, run_id: int, status: str) -> None:
        """Close a run. A successful run supersedes the interrupted and failed runs of
        the same verb before it: what they did no longer counts as "resume from here".
        Refuses when the journal file is no longer the one this run started in."""
        self.check_identity()
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status=?, finished_at=? WHERE id=?", (status, now(), run_id)
            )
            if status == "ok":
                db.execute(
                    "UPDATE runs SET status='superseded' WHERE id < ? AND status IN "
                    "('running', 'failed') AND verb = (SELECT verb FROM runs WHERE id=?)",
                    (run_id, run_id),
                )

    # steps
    def is_done(self, change_key: str) -> bool:
        """Was this change made by a run that did not finish (crashed or failed)?

        That is what resuming skips. After a successful run, the plan's observed
        facts alone decide what is pending again.
        """
        rows = self._query(
            "SELECT 1 FROM steps JOIN runs ON runs.id = steps.run_id WHERE steps.change_key=?"
            " AND steps.status='done' AND runs.status IN ('running', 'failed') LIMIT 1",
            (change_key,),
        )
        return bool(rows)

    def open_step(
        self,
        run_id: int,
        *,
        phase: int,
        task: str,
        action: str,
        change_key: str,
        op: str,
        resource: str,
        summary: str,
        prepare: Callable[[], dict[str, Any]],
    ) -> tuple[int, dict[str, Any]]:
        """Journal a change as `started` with what undoing it needs; return (step, receipt).

        A step of the same task and resource left `started` or `failed` by an
        earlier run is taken over with the receipt it recorded then: the change
        may be half made, so what it found before is what undo must restore.
        """
        row = self._open(task, resource)
        if row is not None:
            with self._tx() as db:
                db.execute(
                    "UPDATE steps SET run_id=?, status='started', error=NULL, change_key=?, op=?,"
                    " summary=? WHERE id=?",
                    (run_id, change_key, op, summary, row[0]),
                )
            return int(row[0]), json.loads(row[1]) if row[1] else {}
        receipt = prepare()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO steps (run_id, phase, task, action, change_key, op, resource,"
                " summary, status, receipt, started_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'started', ?, ?)",
                (
                    run_id,
                    phase,
                    task,
                    action,
                    change_key,
                    op,
                    resource,
                    summary,
                    json.dumps(receipt, sort_keys=True),
                    now(),
                ),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid, receipt

    def _open(self, task: str, resource: str) -> Any:
        rows = self._query(
            "SELECT id, receipt FROM steps WHERE task=? AND resource=?"
            " AND status IN ('started', 'failed') ORDER BY id DESC LIMIT 1",
            (task, resource),
        )
        return rows[0] if rows else None

    def close_if_open(self, task: str, resource: str) -> bool:
        """The plan finds nothing left to do for a resource whose step an interrupted
        run left open: that change was completed; journal it done (its receipt kept)."""
        row = self._open(task, resource)
        if row is None:
            return False
        with self._tx() as db:
            db.execute(
                "UPDATE steps SET status='done', error=NULL, finished_at=? WHERE id=?",
                (now(), row[0]),
            )
        return True

    def finish_step(self, step_id: int, receipt: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE steps SET status='done', receipt=?, finished_at=? WHERE id=?",
                (json.dumps(receipt, sort_keys=True), now(), step_id),
            )

    def fail_step(self, step_id: int, error: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE steps SET status='failed', error=?, finished_at=? WHERE id=?",
                (error, now(), step_id),
            )

    def mark_rolled_back(self, step_id: int) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE steps SET status='rolled_back', finished_at=? WHERE id=?", (now(), step_id)
            )

    def undoable_steps(self, phase: int) -> list[Step]:
        """Steps of `phase` that made (or may have half made) a change, oldest first."""
        rows = self._query(
            "SELECT * FROM steps WHERE phase=? AND status IN ('done', 'started', 'failed')"
            " ORDER BY id",
            (phase,),
        )
        return [_step(row) for row in rows]

    def steps(self, run_id: int | None = None) -> list[Step]:
        query = "SELECT * FROM steps"
        args: tuple[Any, ...] = ()
        if run_id is not None:
            query, args = query + " WHERE run_id=?", (run_id,)
        return [_step(row) for row in self._query(query + " ORDER BY id", args)]

    def applied_phases(self) -> list[int]:
        rows = self._query(
            "SELECT DISTINCT phase FROM steps WHERE status IN ('done', 'started', 'failed')"
            " ORDER BY phase"
        )
        return [int(row[0]) for row in rows]

    # task status
    def mark_applied(self, task: str, phase: int) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO tasks (task, phase, applied_at) VALUES (?, ?, ?) "
                "ON CONFLICT(task) DO UPDATE SET phase=excluded.phase, "
                "applied_at=excluded.applied_at",
                (task, phase, now()),
            )

    def mark_verified(self, task: str, phase: int, done: bool) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO tasks (task, phase, verified_at, done) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(task) DO UPDATE SET phase=excluded.phase, "
                "verified_at=excluded.verified_at, done=excluded.done",
                (task, phase, now(), int(done)),
            )

    def forget_phase(self, phase: int) -> None:
        """After a rollback: the phase's tasks are neither applied nor verified any more."""
        with self._tx() as db:
            db.execute(
                "UPDATE tasks SET applied_at=NULL, verified_at=NULL, done=0 WHERE phase=?", (phase,)
            )

    def task_states(self) -> dict[str, TaskState]:
        rows = self._query("SELECT * FROM tasks")
        return {
            row["task"]: TaskState(
                task=row["task"],
                phase=row["phase"],
                applied_at=row["applied_at"],
                verified_at=row["verified_at"],
                done=bool(row["done"]),
            )
            for row in rows
        }


def _step(row: sqlite3.Row) -> Step:
    return Step(
        id=row["id"],
        run_id=row["run_id"],
        phase=row["phase"],
        task=row["task"],
        action=row["action"],
        change_key=row["change_key"],
        op=row["op"],
        resource=row["resource"],
        summary=row["summary"],
        status=row["status"],
        receipt=json.loads(row["receipt"]) if row["receipt"] else None,
        error=row["error"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def _inode(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_dev, stat.st_ino


def _is_readonly(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "readonly" in text or "read-only" in text


def readonly_error(path: Path) -> UserError:
    return UserError(
        "the state journal is read-only: migrate cannot record what it does",
        file=path,
        hint=f"make it and its directory writable (chmod u+w {path} {path.parent}), "
        "or run migrate as the user who owns them",
    )


def _has_other_state(state_dir: Path) -> str | None:
    """Evidence, cheap to see, that `apply` ran here: what it is, or None."""
    witness = state_dir / WITNESS
    if witness.is_file():
        return f"{witness} records journal {witness.read_text(encoding='utf-8').strip()}"
    for name in ("backups", "pulumi/backups"):
        directory = state_dir / name
        if directory.is_dir() and any(directory.iterdir()):
            return f"{directory} holds backups made by apply"
    return None


def replaced_error(path: Path, evidence: str) -> UserError:
    return UserError(
        f"the state journal is missing, empty or not the one this project had ({evidence})",
        file=path,
        hint="restore state.db from a backup. To start over knowingly (migrate forgets "
        f"what it applied; what it made stays), delete {path.parent / WITNESS} and "
        f"{path.parent / 'backups'}",
    )


def refuse_replaced(path: Path, db: sqlite3.Connection | None = None) -> str | None:
    """Refuse a journal that is missing, empty or another one while other state shows
    that this project was applied; return the journal id `journal.id` records.

    `db` is the journal's open connection (nothing written yet); None: the file is
    not there."""
    witness = path.parent / WITNESS
    recorded = witness.read_text(encoding="utf-8").strip() if witness.is_file() else None
    own: str | None = None
    runs = 0
    if db is not None:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" in tables:
            row = db.execute("SELECT value FROM meta WHERE key='journal_id'").fetchone()
            own = str(row[0]) if row else None
        if "runs" in tables:
            runs = int(db.execute("SELECT count(*) FROM runs").fetchone()[0])
    if own is not None:
        if recorded is not None and own != recorded:
            raise replaced_error(path, f"{witness} records journal {recorded}, not {own}")
        return recorded
    if runs:  # a journal from before journal ids: it is the one
        return recorded
    evidence = _has_other_state(path.parent)
    if evidence is not None:
        raise replaced_error(path, evidence)
    return recorded
