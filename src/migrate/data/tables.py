"""The PostgreSQL side (DESIGN 3.5): schema, dataset tables, bookkeeping, the load lock.

What migrate creates is marked with a COMMENT, so rollback removes exactly
that and a table of the same name that migrate did not create is never
written to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from migrate.data.database import DatabaseError

if TYPE_CHECKING:
    import psycopg

FILES = "_migrate_files"
REJECTS = "_migrate_rejects"
SCHEMA_MARK = "created by migrate"
TABLE_MARK = "migrate dataset: "  # + the dataset name
BOOKKEEPING_MARK = "migrate bookkeeping"


def ident(*names: str) -> Any:
    from psycopg import sql

    return sql.Identifier(*names)


def schema_exists(conn: psycopg.Connection[Any], schema: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    return row is not None


def table_comment(conn: psycopg.Connection[Any], schema: str, table: str) -> str | None:
    """The table's comment, "" for a table without one, None when there is no table."""
    row = conn.execute(
        "SELECT coalesce(obj_description(c.oid, 'pg_class'), '') FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        (schema, table),
    ).fetchone()
    return None if row is None else str(row[0])


def schema_comment(conn: psycopg.Connection[Any], schema: str) -> str | None:
    row = conn.execute(
        "SELECT coalesce(obj_description(oid, 'pg_namespace'), '') FROM pg_namespace"
        " WHERE nspname = %s",
        (schema,),
    ).fetchone()
    return None if row is None else str(row[0])


def ensure_bookkeeping(conn: psycopg.Connection[Any], schema: str) -> bool:
    """Create the schema (if missing) and the bookkeeping tables; True when the
    schema was created now."""
    from psycopg import sql

    created = not schema_exists(conn, schema)
    with conn.transaction():
        if created:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident(schema)))
            conn.execute(
                sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
                    ident(schema), sql.Literal(SCHEMA_MARK)
                )
            )
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} ("
                " _source text PRIMARY KEY, dataset text NOT NULL, table_name text NOT NULL,"
                " sha256 text NOT NULL, bytes bigint NOT NULL, records integer NOT NULL,"
                " rejected integer NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now())"
            ).format(ident(schema, FILES))
        )
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} ("
                " _source text NOT NULL, _record integer NOT NULL, reason text NOT NULL,"
                " raw bytea NOT NULL, PRIMARY KEY (_source, _record))"
            ).format(ident(schema, REJECTS))
        )
        for name in (FILES, REJECTS):
            conn.execute(
                sql.SQL("COMMENT ON TABLE {} IS {}").format(
                    ident(schema, name), sql.Literal(BOOKKEEPING_MARK)
                )
            )
    return created


def migrate_tables(conn: psycopg.Connection[Any], schema: str) -> dict[str, str]:
    """Tables of `schema` that migrate created: table -> its comment."""
    rows = conn.execute(
        "SELECT relname, note FROM (SELECT c.relname, obj_description(c.oid, 'pg_class') AS note"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind = 'r') t WHERE note LIKE %s OR note = %s",
        (schema, TABLE_MARK + "%", BOOKKEEPING_MARK),
    ).fetchall()
    return {str(name): str(comment) for name, comment in rows}


def ensure_table(conn: psycopg.Connection[Any], schema: str, table: str, dataset: str) -> bool:
    """Create the dataset's table if missing; True when created now. Refuses a table of
    that name that migrate did not create.

    A new table gets its primary key after its first load (`ensure_primary_key`):
    building the index once is cheaper than growing it row by row, and a load's
    per-file transactions already guarantee that no key is written twice.
    """
    from psycopg import sql

    comment = table_comment(conn, schema, table)
    if comment is not None:
        if comment != TABLE_MARK + dataset:
            raise DatabaseError(
                f"table {schema}.{table} exists and was not created by migrate for dataset "
                f"{dataset!r}; migrate will not write into it",
                hint="choose another target.schema in migrate.yaml, or rename that table",
            )
        return False
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (_source text NOT NULL, _record integer NOT NULL,"
                " doc jsonb NOT NULL)"
            ).format(ident(schema, table))
        )
        conn.execute(
            sql.SQL("COMMENT ON TABLE {} IS {}").format(
                ident(schema, table), sql.Literal(TABLE_MARK + dataset)
            )
        )
    return True


def ensure_primary_key(conn: psycopg.Connection[Any], schema: str, table: str) -> bool:
    """Add the table's primary key (_source, _record) if it has none; True when added."""
    from psycopg import sql

    row = conn.execute(
        "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND i.indisprimary",
        (schema, table),
    ).fetchone()
    if row is not None:
        return False
    with conn.transaction():
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (_source, _record)").format(
                ident(schema, table)
            )
        )
    return True


def loaded_files(conn: psycopg.Connection[Any], schema: str) -> dict[str, dict[str, Any]]:
    """`_source` -> its `_migrate_files` row, or {} when nothing was loaded yet."""
    from psycopg import sql
    from psycopg.rows import dict_row

    if table_comment(conn, schema, FILES) is None:
        return {}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(sql.SQL("SELECT * FROM {}").format(ident(schema, FILES))).fetchall()
    return {row["_source"]: row for row in rows}


def forget_datasets(conn: psycopg.Connection[Any], schema: str, datasets: list[str]) -> None:
    """Remove the datasets' rows from `_migrate_files` and their rejects."""
    from psycopg import sql

    files = ident(schema, FILES)
    conn.execute(
        sql.SQL(
            "DELETE FROM {} WHERE _source IN (SELECT _source FROM {} WHERE dataset = ANY(%s))"
        ).format(ident(schema, REJECTS), files),
        (datasets,),
    )
    conn.execute(sql.SQL("DELETE FROM {} WHERE dataset = ANY(%s)").format(files), (datasets,))


def lock_key(schema: str) -> tuple[str, str]:
    return ("migrate data", schema)


def unlock(conn: psycopg.Connection[Any], schema: str) -> None:
    """Release the lock of `try_lock` now: a closed connection releases it only when its
    server process has exited, a moment later, and a load that follows at once would be
    refused."""
    conn.execute("SELECT pg_advisory_unlock(hashtext(%s), hashtext(%s))", lock_key(schema))


def try_lock(conn: psycopg.Connection[Any], schema: str) -> None:
    """Take the per-schema advisory lock for this session, or refuse at once."""
    row = conn.execute(
        "SELECT pg_try_advisory_lock(hashtext(%s), hashtext(%s))", lock_key(schema)
    ).fetchone()
    if not (row and row[0]):
        raise DatabaseError(
            f"another migrate run is loading into schema {schema!r} of this database",
            hint="wait for it to finish, then run the command again",
        )
