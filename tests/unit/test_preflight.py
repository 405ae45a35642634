"""Apply's preflight: a service the phase needs that does not answer is refused before
anything is asked or changed, with the password masked."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from migrate.cli.app import app


def test_unreachable_database_is_refused_before_anything(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # port 1 on loopback: nothing listens, the connection is refused at once
    monkeypatch.setenv("MIGRATE_DATABASE_URL", "postgresql://migrator:hunter2@127.0.0.1:1/app")
    result = CliRunner().invoke(
        app,
        ["-C", str(project), "apply", "--phase", "2", "--only", "database-migration", "--force"],
    )
    assert result.exit_code == 1
    assert "cannot connect to PostgreSQL at postgresql://migrator:***@127.0.0.1:1/app" in (
        result.stderr
    )
    assert "hunter2" not in result.output
    assert "Apply these changes" not in result.output  # refused before the question
    steps = project / ".migrate" / "state.db"
    assert not steps.exists() or b"database-migration" not in steps.read_bytes()
