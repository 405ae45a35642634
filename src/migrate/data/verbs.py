"""`migrate data load|verify|rollback` as functions over a project directory.

Each opens the project, takes the project lock where it writes, and makes one
call into `loader`, `verify` or `rollback`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from migrate.reporting import Reporter

if TYPE_CHECKING:
    from migrate.data.database import Database
    from migrate.data.loader import LoadResult
    from migrate.data.rollback import DataRollbackResult
    from migrate.data.verify import VerifyResult
    from migrate.engine.context import Context
    from migrate.inventory import Dataset


def load(
    project_dir: Path,
    datasets: list[str] | None = None,
    *,
    database_url: str | None = None,
    reporter: Reporter | None = None,
    workers: int | None = None,
) -> LoadResult:
    """Load the datasets (default all) into `<target.schema>.<table>`, holding the
    project lock; unchanged files are skipped, changed ones replaced."""
    from migrate.data import loader
    from migrate.project import open_context
    from migrate.state.lock import ProjectLock

    ctx = open_context(project_dir, reporter, journal=False)
    selected = _selected(ctx, datasets, reporter)
    with ProjectLock(ctx.state_dir, "data load"):
        db = _database(ctx, database_url, reporter)
        return loader.load(
            db,
            ctx.config.target.db_schema,
            selected,
            reporter=reporter,
            workers=loader.WORKERS if workers is None else workers,
        )


def verify(
    project_dir: Path,
    datasets: list[str] | None = None,
    *,
    database_url: str | None = None,
    reporter: Reporter | None = None,
) -> VerifyResult:
    """Compare the source files with the database: keys, documents, rejects, hashes."""
    from migrate.data import verify as checking
    from migrate.project import open_context

    ctx = open_context(project_dir, reporter, journal=False)
    selected = _selected(ctx, datasets, reporter)
    db = _database(ctx, database_url, reporter)
    return checking.verify(db, ctx.config.target.db_schema, selected, reporter=reporter)


def rollback(
    project_dir: Path,
    datasets: list[str] | None = None,
    *,
    database_url: str | None = None,
    confirm: Callable[[list[str]], bool] | None = None,
    reporter: Reporter | None = None,
) -> DataRollbackResult | None:
    """Drop what `data load` created (all, or the `datasets`); None when not confirmed."""
    from migrate.data import rollback as undoing
    from migrate.project import open_context
    from migrate.state.lock import ProjectLock

    ctx = open_context(project_dir, reporter, journal=False)
    with ProjectLock(ctx.state_dir, "data rollback"):
        db = _database(ctx, database_url, reporter)
        return undoing.rollback(db, ctx.config.target.db_schema, datasets, confirm=confirm)


def _selected(ctx: Context, names: list[str] | None, reporter: Reporter | None) -> list[Dataset]:
    """The datasets named (default all) of the legacy application, its warnings said."""
    from migrate.data import selection

    inventory = ctx.inventory
    for warning in inventory.warnings:
        if reporter is not None:
            reporter.warn(warning)
    return selection.select(inventory, names)


def _database(ctx: Context, database_url: str | None, reporter: Reporter | None) -> Database:
    from migrate.data import database

    db = database.resolve(ctx.project_dir, ctx.config, database_url)
    if reporter is not None:
        reporter.info(f"database: {db.describe()}")
    return db
