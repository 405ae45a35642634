"""Issue 13, the journal and state: a journal that vanishes or is replaced, a read-only
journal, and the embedded PostgreSQL's handle file after a kill -9 (items 12, 13, 14)."""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from migrate.cli.app import app

ONLY = ("apply", "--phase", "1", "--only", "ci-cd-pipelines", "--yes")


def run(project: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["-C", str(project), *args])


def applied(project: Path) -> Path:
    """Apply a task; return the journal as a finished migrate process leaves it."""
    result = run(project, *ONLY)
    assert result.exit_code == 0, result.output
    state = project / ".migrate" / "state.db"
    settled(state)
    return state


def settled(state: Path) -> None:
    """What a finished migrate process leaves: the WAL checkpointed into state.db."""
    gc.collect()  # the in-process runs' connections
    with contextlib.closing(sqlite3.connect(state)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for suffix in ("-wal", "-shm"):
        state.with_name(state.name + suffix).unlink(missing_ok=True)


# --- item 12: the journal vanishes ---------------------------------------------------------


def test_an_emptied_journal_is_refused_not_read_as_nothing_applied(project: Path) -> None:
    state = applied(project)
    state.write_bytes(b"")  # `: > .migrate/state.db`
    for verb in (("status",), ("rollback", "--yes"), ONLY, ("verify",)):
        result = run(project, *verb)
        assert result.exit_code == 1, (verb, result.output)
        assert "state.db" in result.stderr and "journal" in result.stderr, result.stderr
        assert "restore state.db" in result.stderr
        assert "nothing to roll back" not in result.output
        assert "internal error" not in result.output


def test_a_deleted_journal_is_refused(project: Path) -> None:
    state = applied(project)
    for suffix in ("", "-wal", "-shm"):
        state.with_name(state.name + suffix).unlink(missing_ok=True)
    status = run(project, "status")
    assert status.exit_code == 1 and "state journal is missing" in status.stderr
    rollback = run(project, "rollback", "--yes")
    assert rollback.exit_code == 1 and "nothing to roll back" not in rollback.output
    assert not state.exists()  # the refused verbs did not create a new journal


def test_another_projects_journal_is_refused(tmp_path: Path, project: Path) -> None:
    state = applied(project)
    other = tmp_path / "other"
    shutil.copytree(project, other, ignore=shutil.ignore_patterns(".migrate"))
    other_state = applied(other)
    for suffix in ("", "-wal", "-shm"):
        state.with_name(state.name + suffix).unlink(missing_ok=True)
    shutil.copy(other_state, state)
    result = run(project, "status")
    assert result.exit_code == 1 and "not the one this project had" in result.stderr


def test_backups_are_evidence_when_there_is_no_journal_id(project: Path) -> None:
    backups = project / ".migrate" / "backups" / "files"
    backups.mkdir(parents=True)
    (backups / "Dockerfile.0123456789ab").write_text("kept\n")
    result = run(project, "status")
    assert result.exit_code == 1 and "backups" in result.stderr


def test_a_fresh_project_and_a_kept_journal_still_work(project: Path) -> None:
    assert run(project, "status").exit_code == 0  # nothing applied, nothing in the way
    applied(project)
    assert run(project, "status").exit_code == 0
    assert run(project, "rollback", "--yes").exit_code == 0


def test_deleting_the_journal_mid_apply_fails_the_apply(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from migrate.actions.files import FilesAction

    state = project / ".migrate" / "state.db"
    real = FilesAction.apply

    def apply_then_delete(self: FilesAction, ctx: object, change: object) -> object:
        receipt = real(self, ctx, change)  # type: ignore[arg-type]
        state.unlink(missing_ok=True)
        return receipt

    monkeypatch.setattr(FilesAction, "apply", apply_then_delete)
    result = run(project, *ONLY)
    assert result.exit_code == 1, result.output
    assert "state journal was deleted while migrate was running" in result.stderr
    assert "internal error" not in result.output


# --- item 13: a read-only journal ---------------------------------------------------------


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make `path` read-only for this process: chmod for a user, the immutable attribute
    for root (which ignores modes)."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: cannot make a file read-only")
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"chattr +i refused here: {made.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_read_only_journal_gives_a_clear_message(project: Path) -> None:
    state = applied(project)
    with read_only(state):
        status = run(project, "status")
        assert status.exit_code == 0, status.output  # reading needs no write
        for verb in (ONLY, ("rollback", "--yes"), ("verify",)):
            result = run(project, *verb)
            assert result.exit_code == 1, (verb, result.output)
            assert "internal error" not in result.output
            assert "state.db" in result.stderr and "read-only" in result.stderr, result.stderr
            assert "chmod u+w" in result.stderr
