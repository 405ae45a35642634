"""The SQLite journal in `.migrate/state.db`: runs, steps with receipts, task status.

A step is journaled `started` before its change is applied and `done` with
its receipt after; a crash in between leaves `started`, and the next apply
runs the (idempotent) change again. `rolled_back` steps are history.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrate.errors import UserError

SCHEMA_VERSION = 1

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
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(
                f"cannot create the state directory {path.parent}: {exc.strerror}",
                hint="migrate keeps its journal there; remove or rename what is in the way",
            ) from None
        try:
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._check_version()
        except sqlite3.DatabaseError as exc:
            raise UserError(
                f"the state journal cannot be read: {exc}",
                file=path,
                hint="restore it from a backup; deleting it forgets what was applied",
            ) from None
        self._db.row_factory = sqlite3.Row

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

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

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
        the same verb before it: what they did no longer counts as "resume from here"."""
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
        row = self._db.execute(
            "SELECT 1 FROM steps JOIN runs ON runs.id = steps.run_id WHERE steps.change_key=?"
            " AND steps.status='done' AND runs.status IN ('running', 'failed') LIMIT 1",
            (change_key,),
        ).fetchone()
        return row is not None

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
        return self._db.execute(
            "SELECT id, receipt FROM steps WHERE task=? AND resource=?"
            " AND status IN ('started', 'failed') ORDER BY id DESC LIMIT 1",
            (task, resource),
        ).fetchone()

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
        rows = self._db.execute(
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
        return [_step(row) for row in self._db.execute(query + " ORDER BY id", args)]

    def applied_phases(self) -> list[int]:
        rows = self._db.execute(
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
        rows = self._db.execute("SELECT * FROM tasks")
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
