"""The data verbs read the project's config, not its roadmap (`project.open_config`): a
roadmap being edited (here: broken) stops neither `data load`, `data verify` nor
`data rollback`, while `plan` still refuses it with its file and line. A journal that
was deleted after an apply is still refused, as by every verb."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from migrate.project import open_config
from tests.integration.data.cli import migrate, output, project_for
from tests.integration.data.conftest import query


def test_a_broken_roadmap_does_not_stop_the_data_verbs(tmp_path: Path, database_url: str) -> None:
    project = project_for(tmp_path, {"events/a.jsonl": '{"a": 1}\n{"a": 2}\n'})
    roadmap = project / "phases" / "roadmap.yaml"
    roadmap.write_text(roadmap.read_text(encoding="utf-8") + "\n  - id: [broken\n")

    plan = migrate(project, database_url, "plan")
    assert plan.returncode == 1, output(plan)
    assert "roadmap.yaml" in plan.stderr and "line" in plan.stderr, output(plan)

    load = migrate(project, database_url, "data", "load")
    assert load.returncode == 0, output(load)
    assert query(database_url, "SELECT count(*) FROM legacy.events") == [(2,)]
    verify = migrate(project, database_url, "data", "verify")
    assert verify.returncode == 0, output(verify)
    rollback = migrate(project, database_url, "data", "rollback", "--yes")
    assert rollback.returncode == 0, output(rollback)
    assert query(database_url, "SELECT to_regclass('legacy.events')") == [(None,)]


def test_a_deleted_journal_still_stops_a_data_load(tmp_path: Path, database_url: str) -> None:
    project = project_for(tmp_path, {"events/a.jsonl": '{"a": 1}\n'})
    state = project / ".migrate" / "state.db"
    state.parent.mkdir(exist_ok=True)
    with contextlib.closing(sqlite3.connect(state)) as db:  # a journal that was applied
        db.execute("CREATE TABLE meta (key text, value text)")
        db.execute("INSERT INTO meta VALUES ('journal_id', 'j-1')")
        db.commit()
    (state.parent / "journal.id").write_text("j-1\n")
    open_config(project)  # the journal is there: fine
    state.unlink()

    load = migrate(project, database_url, "data", "load")
    assert load.returncode == 1, output(load)
    assert "state journal is missing" in load.stderr and "restore state.db" in load.stderr
    assert query(database_url, "SELECT to_regclass('legacy.events')") == [(None,)]
