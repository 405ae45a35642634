"""`migrate data load|verify|rollback` as functions over a project directory.

Each reads the project's config (not its roadmap: `project.open_config`), takes the
project lock where it writes, and makes one call into `loader`, `verify` or `rollback`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from migrate.reporting import Reporter

if TYPE_CHECKING:
    from migrate.config import Config
    from migrate.data.database import Database
    from migrate.data.loader import LoadResult
    from migrate.data.rollback import DataRollbackResult
    from migrate.data.verify import VerifyResult
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
    from migrate.config import STATE_DIR
    from migrate.data import loader
    from migrate.project import open_config
    from migrate.state.lock import ProjectLock

    config = open_config(project_dir)
    selected = _selected(project_dir, config, datasets, reporter)
    with ProjectLock(project_dir / STATE_DIR, "data load"):
        db = _database(project_dir, config, database_url, reporter)
        return loader.load(
            db,
            config.target.db_schema,
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
    from migrate.project import open_config

    config = open_config(project_dir)
    selected = _selected(project_dir, config, datasets, reporter)
    db = _database(project_dir, config, database_url, reporter)
    return checking.verify(db, config.target.db_schema, selected, reporter=reporter)


def rollback(
    project_dir: Path,
    datasets: list[str] | None = None,
    *,
    database_url: str | None = None,
    confirm: Callable[[list[str]], bool] | None = None,
    reporter: Reporter | None = None,
) -> DataRollbackResult | None:
    """Drop what `data load` created (all, or the `datasets`); None when not confirmed."""
    from migrate.config import STATE_DIR
    from migrate.data import rollback as undoing
    from migrate.project import open_config
    from migrate.state.lock import ProjectLock

    config = open_config(project_dir)
    with ProjectLock(project_dir / STATE_DIR, "data rollback"):
        db = _database(project_dir, config, database_url, reporter)
        return undoing.rollback(db, config.target.db_schema, datasets, confirm=confirm)


def _selected(
    project_dir: Path, config: Config, names: list[str] | None, reporter: Reporter | None
) -> list[Dataset]:
    """The datasets named (default all) of the legacy application, its warnings said."""
    from migrate.data import selection
    from migrate.inventory import scan

    inventory = scan((project_dir / config.source.path).resolve())  # as Context.source_dir
    for warning in inventory.warnings:
        if reporter is not None:
            reporter.warn(warning)
    return selection.select(inventory, names)


def _database(
    project_dir: Path, config: Config, database_url: str | None, reporter: Reporter | None
) -> Database:
    from migrate.data import database

    db = database.resolve(project_dir, config, database_url)
    if reporter is not None:
        reporter.info(f"database: {db.describe()}")
    return db
