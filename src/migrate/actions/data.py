"""`data`: the Phase 2 task that loads the application's datasets into PostgreSQL.

One change per dataset. Before loading into a table that already exists, the
table and the bookkeeping tables are dumped with pg_dump (the blueprint's
"backups before data migration"); rollback restores that dump, or drops what
the load created.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from migrate.engine.change import Change, Op, Receipt
from migrate.errors import ActionError

if TYPE_CHECKING:
    from migrate.data.database import Database
    from migrate.engine.context import Context
    from migrate.roadmap import Task


class Backup(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    before_load: Annotated[
        bool, Field(description="pg_dump the target tables before loading into them")
    ] = True
    method: Literal["pg_dump"] = "pg_dump"
    dir: Annotated[str, Field(description="Where dumps go, relative to the project")] = (
        ".migrate/backups"
    )


class DataParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    datasets: Annotated[
        Literal["all"] | list[str], Field(description="`all`, or a list of dataset names")
    ] = "all"
    db_schema: Annotated[
        str | None, Field(alias="schema", description="Target schema (default target.schema)")
    ] = None
    backup: Backup = Backup()
    verify_after_load: Annotated[
        bool, Field(description="Run `data verify` on each dataset after loading it")
    ] = True


#: why a load into an existing table cannot be undone without a backup
NO_BACKUP = (
    "no backup (backup.before_load is false), so rollback cannot restore the table's rows "
    "as they were"
)


class DataAction:
    kind: ClassVar[str] = "data"
    Params: ClassVar[type[BaseModel] | None] = DataParams

    def _params(self, ctx: Context, task: Task) -> DataParams:
        from migrate.actions.base import params

        validated: DataParams = params(ctx, task)  # checked once, after expansion
        return validated

    def preflight(self, ctx: Context) -> None:
        """Before apply asks or changes anything: the database answers (password masked)."""
        db = _database(ctx, start=True)
        assert db is not None
        with db.connect():
            pass

    def plan(self, ctx: Context, task: Task) -> list[Change]:
        from migrate.data import selection, tables
        from migrate.names import table_name

        params = self._params(ctx, task)
        schema = params.db_schema or ctx.config.target.db_schema
        names = None if params.datasets == "all" else list(params.datasets)
        datasets = selection.select(ctx.inventory, names)
        loaded: dict[str, dict[str, Any]] = {}
        existing: set[str] = set()
        db = _database(ctx, start=False)
        if db is not None:
            with db.connect(autocommit=True) as conn:
                loaded = tables.loaded_files(conn, schema)
                existing = {
                    name
                    for name in map(table_name, (d.name for d in datasets))
                    if tables.table_comment(conn, schema, name) is not None
                }
        changes = []
        for dataset in datasets:
            table = table_name(dataset.name)
            shas = {f.relative: selection.sha256_file(f.path) for f in dataset.files}
            new = [s for s in shas if s not in loaded]
            changed = [s for s, sha in shas.items() if s in loaded and loaded[s]["sha256"] != sha]
            data = {
                "dataset": dataset.name,
                "schema": schema,
                "table": table,
                "files": shas,
                "backup": params.backup.before_load,
                "backup_dir": params.backup.dir,
                "verify": params.verify_after_load,
            }
            resource = f"table:{schema}.{table}"
            op: Op
            cannot_undo = None
            if table not in existing:
                # from sizes and hashes only: records are counted when they are loaded, so
                # planning does not cost as much as the data (issue 15, item 3)
                size = sum(_size(f.path) for f in dataset.files)
                op, summary = (
                    "create",
                    f"create table {schema}.{table} ({len(shas)} files, {_bytes(size)})",
                )
            elif new or changed:
                backup = ", after a pg_dump backup" if params.backup.before_load else ""
                if not params.backup.before_load:
                    cannot_undo = NO_BACKUP
                op, summary = (
                    "update",
                    (f"load {len(new)} new file(s), reload {len(changed)} changed file(s){backup}"),
                )
            else:
                op, summary = "noop", f"nothing to do: {len(shas)} file(s) loaded"
            changes.append(
                Change(
                    task=task.id,
                    action=self.kind,
                    op=op,
                    resource=resource,
                    summary=summary,
                    data=data,
                    cannot_undo=cannot_undo,
                )
            )
        return changes

    def prepare(self, ctx: Context, change: Change) -> Receipt:
        from migrate.data import backup, tables

        data = change.data
        db = _database(ctx, start=True)
        assert db is not None
        schema, table = data["schema"], data["table"]
        with db.connect(autocommit=True) as conn:
            schema_existed = tables.schema_exists(conn, schema)
            table_existed = tables.table_comment(conn, schema, table) is not None
            bookkeeping = tables.table_comment(conn, schema, tables.FILES) is not None
        dump = None
        if data["backup"] and table_existed:
            names = [table, *([tables.FILES, tables.REJECTS] if bookkeeping else [])]
            target = ctx.project_dir / data["backup_dir"]
            dump = str(backup.dump(db, schema, names, target).relative_to(ctx.project_dir))
            ctx.reporter.info(f"backed up {schema}.{table} to {dump}")
        return {
            "dataset": data["dataset"],
            "schema": schema,
            "table": table,
            "schema_existed": schema_existed,
            "table_existed": table_existed,
            "backup": dump,
        }

    def apply(self, ctx: Context, change: Change) -> Receipt:
        from migrate.data import loader, selection
        from migrate.data.verify import verify

        db = _database(ctx, start=True)
        assert db is not None
        dataset = selection.select(ctx.inventory, [change.data["dataset"]])
        result = loader.load(db, change.data["schema"], dataset, reporter=ctx.reporter)
        [loaded] = result.datasets
        if change.data["verify"]:
            [check] = verify(db, change.data["schema"], dataset).datasets
            if not check.ok:
                raise ActionError(
                    change.task,
                    f"dataset {check.dataset} does not match its source after loading: "
                    + "; ".join(check.problems()),
                    hint="see `migrate data verify`; the source may have changed during the load",
                )
        return {"loaded": loaded.loaded, "rejected": loaded.rejected}

    def rollback(self, ctx: Context, receipt: Receipt) -> str | None:
        from psycopg import sql

        from migrate.data import backup, tables

        db = _database(ctx, start=True)
        assert db is not None
        schema, table = receipt["schema"], receipt["table"]
        if receipt.get("backup"):
            backup.restore(db, ctx.project_dir / receipt["backup"])
            return None
        if receipt.get("table_existed"):
            return f"{schema}.{table} keeps the rows loaded: {NO_BACKUP}"
        with db.connect(autocommit=True) as conn:
            if not tables.schema_exists(conn, schema):
                return None  # already gone
            with conn.transaction():
                if not receipt.get("table_existed", True):
                    conn.execute(
                        sql.SQL("DROP TABLE IF EXISTS {}").format(tables.ident(schema, table))
                    )
                    if tables.table_comment(conn, schema, tables.FILES) is not None:
                        tables.forget_datasets(conn, schema, [receipt["dataset"]])
            if not receipt.get("schema_existed", True):
                _drop_schema_if_only_bookkeeping(conn, schema)
        return None


def _drop_schema_if_only_bookkeeping(conn: Any, schema: str) -> None:
    """The change that created the schema is undone last: drop the bookkeeping tables
    and the schema, when nothing else (no other dataset, nothing of the user's) is left."""
    from psycopg import sql

    from migrate.data import tables

    created = tables.migrate_tables(conn, schema)
    others = conn.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind = 'r' AND NOT (c.relname = ANY(%s))",
        (schema, [tables.FILES, tables.REJECTS]),
    ).fetchone()
    if set(created) - {tables.FILES, tables.REJECTS} or (others and others[0]):
        return
    with conn.transaction():
        for name in (tables.FILES, tables.REJECTS):
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(tables.ident(schema, name)))
        if tables.schema_comment(conn, schema) == tables.SCHEMA_MARK:
            conn.execute(sql.SQL("DROP SCHEMA {}").format(tables.ident(schema)))


def _database(ctx: Context, *, start: bool) -> Database | None:
    """The project's database. With `start=False` an embedded server that was never
    created is not started: the plan then reads as against an empty database."""
    from migrate.data import database

    config = ctx.config
    embedded = not os.environ.get(database.ENV_URL) and config.target.database_url is None
    if embedded and not start and not (ctx.project_dir / database.EMBEDDED_DIR).exists():
        return None
    return database.resolve(ctx.project_dir, config)


def _size(path: Any) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0  # hashing the file already said why it cannot be read


def _bytes(size: int) -> str:
    """`17.4 KiB`: a size as people read it."""
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
