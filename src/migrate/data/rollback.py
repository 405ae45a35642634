"""`migrate data rollback`: remove exactly what `data load` created, nothing else.

Tables are recognised by the comment load put on them, not by name, so a
table the user made in the same schema is never dropped. The schema goes
only if load created it and nothing else lives in it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migrate.data import tables
from migrate.errors import UserError

if TYPE_CHECKING:
    from migrate.data.database import Database


@dataclass
class DataRollbackResult:
    schema: str
    dropped: list[str] = field(default_factory=list)  # tables
    dropped_schema: bool = False
    kept: list[str] = field(default_factory=list)  # what was left, and why

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "schema": self.schema,
            "dropped_tables": self.dropped,
            "dropped_schema": self.dropped_schema,
            "kept": self.kept,
        }


def rollback(
    db: Database,
    schema: str,
    datasets: Sequence[str] | None = None,
    *,
    confirm: Callable[[list[str]], bool] | None = None,
) -> DataRollbackResult | None:
    """Drop the tables load created (all, or those of `datasets`). `confirm` sees
    the list of what will be dropped; None from here means it declined."""
    with db.connect(autocommit=True) as conn:
        if not tables.schema_exists(conn, schema):
            raise UserError(f"nothing to roll back: there is no schema {schema!r}")
        tables.try_lock(conn, schema)
        try:
            return _drop(conn, schema, datasets, confirm)
        finally:  # now, not when the server notices the closed connection (as load does)
            with contextlib.suppress(Exception):
                tables.unlock(conn, schema)


def _drop(
    conn: Any,
    schema: str,
    datasets: Sequence[str] | None,
    confirm: Callable[[list[str]], bool] | None,
) -> DataRollbackResult | None:
    """The body of `rollback`, under the schema's lock."""
    from psycopg import sql

    result = DataRollbackResult(schema)
    created = tables.migrate_tables(conn, schema)
    by_dataset = {
        comment.removeprefix(tables.TABLE_MARK): name
        for name, comment in created.items()
        if comment.startswith(tables.TABLE_MARK)
    }
    if datasets:
        unknown = [d for d in datasets if d not in by_dataset]
        if unknown:
            raise UserError(
                f"no table of dataset(s) {', '.join(map(repr, unknown))} in schema {schema!r}",
                hint=f"loaded datasets: {', '.join(sorted(by_dataset)) or 'none'}",
            )
        drop = [by_dataset[d] for d in datasets]
    else:
        drop = sorted(created)
    if not drop:
        raise UserError(f"nothing to roll back: migrate created no table in schema {schema!r}")
    drop_schema = not datasets and tables.schema_comment(conn, schema) == tables.SCHEMA_MARK
    listing = [f"drop table {schema}.{name}" for name in drop]
    if datasets:
        listing.append(f"forget {len(drop)} dataset(s) in {schema}._migrate_files")
    if drop_schema:
        listing.append(f"drop schema {schema} (load created it), if nothing else is in it")
    if confirm is not None and not confirm(listing):
        return None
    with conn.transaction():
        for name in drop:
            conn.execute(sql.SQL("DROP TABLE {}").format(tables.ident(schema, name)))
        if datasets and tables.FILES in created:
            tables.forget_datasets(conn, schema, list(datasets))
    result.dropped = drop
    if drop_schema:
        leftover = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s",
            (schema,),
        ).fetchone()
        if leftover and leftover[0]:
            result.kept.append(
                f"schema {schema}: load created it, but it now holds {leftover[0]} other "
                "object(s), so it stays"
            )
        else:
            conn.execute(sql.SQL("DROP SCHEMA {}").format(tables.ident(schema)))
            result.dropped_schema = True
    return result
