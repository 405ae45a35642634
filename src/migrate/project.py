"""Opening a project directory: its config, roadmap, context and journal.

This is where the project is assembled: the roadmap loads on its own (it knows
no action), and each task's `with:` block is then checked by the action registry
against its kind's parameters, after expansion."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from migrate.config import STATE_DIR, Config, load_config
from migrate.engine.context import Context
from migrate.errors import UserError
from migrate.reporting import NullReporter, Reporter
from migrate.state.journal import Journal, refuse_replaced

if TYPE_CHECKING:
    from migrate.roadmap import Roadmap

STATE_DB = "state.db"


def check_dir(project_dir: Path) -> Path:
    if not project_dir.is_dir():
        raise UserError(
            f"project directory {project_dir} does not exist",
            hint="pass -C DIR with the directory that holds migrate.yaml",
        )
    return project_dir


def load(project_dir: Path) -> tuple[Config, Roadmap]:
    from migrate.roadmap import load_roadmap  # here: the data verbs never need it

    config = load_config(check_dir(project_dir))
    return config, load_roadmap(project_dir / config.roadmap)


def open_config(project_dir: Path) -> Config:
    """The project's config alone, for the verbs that never read the roadmap (`data
    load|verify|rollback`: a roadmap being edited does not stop them, and they start
    without parsing it). Refuses a replaced journal as `open_context(journal=False)`."""
    config = load_config(check_dir(project_dir))
    db = project_dir / STATE_DIR / STATE_DB
    if not db.is_file():
        refuse_replaced(db)  # no journal here: was there one?
    return config


def open_context(
    project_dir: Path, reporter: Reporter | None = None, *, journal: bool | None = None
) -> Context:
    """A context for the project. `journal`: True opens (and creates) the state
    journal, False never does, None opens it only when it exists (read-only verbs
    leave no trace)."""
    config, roadmap = load(project_dir)
    ctx = Context(
        project_dir=project_dir,
        config=config,
        roadmap=roadmap,
        reporter=reporter or NullReporter(),
    )
    from migrate.actions import registry

    registry.check_params(ctx)  # every task's `with:`, once, after `{{ }}` expansion
    db = project_dir / STATE_DIR / STATE_DB
    if journal or (journal is None and db.is_file()):
        ctx.journal = Journal(db)
    elif not db.is_file():
        refuse_replaced(db)  # no journal here: was there one?
    return ctx
