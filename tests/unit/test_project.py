"""Opening a project: a context that does not journal still opens beside a journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrate.errors import UserError
from migrate.project import open_context


def test_a_context_without_journal_opens_where_a_journal_exists(project: Path) -> None:
    """`infra preview|cancel` and the `data` verbs open with journal=False: an existing
    journal is not one that "vanished" (it was refused as replaced before)."""
    open_context(project, journal=True)  # creates the journal and its witness
    ctx = open_context(project, journal=False)
    assert ctx.journal is None


def test_a_journal_that_vanished_is_still_refused(project: Path) -> None:
    open_context(project, journal=True)
    for path in (project / ".migrate").glob("state.db*"):
        path.unlink()
    with pytest.raises(UserError, match="state journal is missing"):
        open_context(project, journal=False)
