"""The orchestrator's run store in PostgreSQL (DESIGN 3.9): a restarted orchestrator
loses nothing.

Three tables in DATABASE_SCHEMA, created if missing:

- `migrate_runs`: one row a run (its root event type, status, error).
- `migrate_run_events`: the headers of a run's events, in the order they were
  recorded (`seq`), and the root event's payload (to publish it again).
- `migrate_run_expectations`: one row per (event, plugin that consumes its
  type): open until that plugin's settled notice arrives, then its outcome
  (`produced`, `none`, `dead`), error and attempts.

A run is `failed` once any expectation is dead, `done` once none is open,
else `running`; its status is kept in `migrate_runs` by the same transaction
that settles an expectation. Every write is idempotent (ON CONFLICT), so a
notice read twice changes nothing.

psycopg is imported when a store connects. A store holds one connection behind
a lock (use one store per thread that writes much); a connection broken by a
database restart is dropped and opened again on the next call.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .log import log

if TYPE_CHECKING:
    import psycopg

RUNNING, DONE, FAILED = "running", "done", "failed"
OUTCOMES = ("produced", "none", "dead")
CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_MS = 15000
COMMENT = "Created by the migrate runtime (orchestrator): {what}. Safe to drop when no run matters."

_DDL = (
    "CREATE SCHEMA IF NOT EXISTS {schema}",
    """CREATE TABLE IF NOT EXISTS {schema}.migrate_runs (
        run_id text PRIMARY KEY,
        type text NOT NULL,
        status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
        error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz
    )""",
    """CREATE TABLE IF NOT EXISTS {schema}.migrate_run_events (
        seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
        event_id text PRIMARY KEY,
        run_id text NOT NULL REFERENCES {schema}.migrate_runs ON DELETE CASCADE,
        type text NOT NULL,
        parent_id text,
        header jsonb NOT NULL,
        payload jsonb,
        recorded_at timestamptz NOT NULL DEFAULT now()
    )""",
    "CREATE INDEX IF NOT EXISTS migrate_run_events_by_run"
    " ON {schema}.migrate_run_events (run_id, seq)",
    """CREATE TABLE IF NOT EXISTS {schema}.migrate_run_expectations (
        event_id text NOT NULL,
        plugin text NOT NULL,
        run_id text NOT NULL REFERENCES {schema}.migrate_runs ON DELETE CASCADE,
        type text NOT NULL,
        outcome text CHECK (outcome IN ('produced', 'none', 'dead')),
        error text,
        attempts integer,
        created_at timestamptz NOT NULL DEFAULT now(),
        settled_at timestamptz,
        PRIMARY KEY (event_id, plugin)
    )""",
    "CREATE INDEX IF NOT EXISTS migrate_run_expectations_by_run"
    " ON {schema}.migrate_run_expectations (run_id)",
)
_COMMENTS = {
    "migrate_runs": "one row a run started by POST /runs",
    "migrate_run_events": "the events of each run, in the order they were recorded",
    "migrate_run_expectations": "which plugin still has to handle which event of a run",
}


class StoreUnavailable(ConnectionError):
    """The database does not answer (readiness fails; callers retry)."""


@dataclass(frozen=True)
class Run:
    run_id: str
    status: str
    error: str | None
    events: list[tuple[int, dict[str, Any]]]  # (seq, header), in order


@dataclass(frozen=True)
class Settled:
    run_id: str
    before: str  # the run's status before the notice
    after: str  # and after it


class RunStore:
    """Runs in PostgreSQL at `url`, tables in `schema`."""

    def __init__(self, url: str, schema: str) -> None:
        if not url:
            raise ValueError("DATABASE_URL is not set: the orchestrator keeps its runs there")
        self.url = url
        self.schema = schema
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None

    # -- connection ---------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        if self._conn is not None and not self._conn.closed:
            return self._conn
        self._conn = psycopg.connect(
            self.url,
            connect_timeout=CONNECT_TIMEOUT_S,
            options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
            application_name="migrate-orchestrator",
        )
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor[Any]]:
        """A cursor in a transaction; a lost connection becomes StoreUnavailable."""
        import psycopg

        with self._lock:
            try:
                conn = self._connect()
                with conn.transaction(), conn.cursor() as cursor:
                    yield cursor
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self._drop()
                raise StoreUnavailable(_reason(exc)) from exc

    def _run(self, work: Callable[[psycopg.Cursor[Any]], Any]) -> Any:
        """`work` in a transaction; once more on a fresh connection when the first
        attempt found the connection broken (every write here is idempotent)."""
        try:
            with self._transaction() as cursor:
                return work(cursor)
        except StoreUnavailable as exc:
            log("info", "the database connection broke: connecting again", error=str(exc))
            with self._transaction() as cursor:
                return work(cursor)

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # it is broken anyway
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _sql(self, text: str) -> Any:
        from psycopg import sql

        return sql.SQL(text).format(schema=sql.Identifier(self.schema))

    # -- the store ---------------------------------------------------------

    def ping(self) -> None:
        """Raise StoreUnavailable when the database does not answer."""
        self._run(lambda cursor: cursor.execute("SELECT 1"))

    def setup(self) -> None:
        """Create the schema and the tables when missing (concurrent starts are safe)."""

        def work(cursor: psycopg.Cursor[Any]) -> None:
            from psycopg import sql

            # CREATE ... IF NOT EXISTS races with itself: one orchestrator at a time
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('migrate_runtime.runstore'))")
            for statement in _DDL:
                cursor.execute(self._sql(statement))
            for table, what in _COMMENTS.items():
                cursor.execute(
                    sql.SQL("COMMENT ON TABLE {}.{} IS {}").format(
                        sql.Identifier(self.schema),
                        sql.Identifier(table),
                        sql.Literal(COMMENT.format(what=what)),
                    )
                )

        self._run(work)

    def create_run(self, root: dict[str, Any], consumers: Sequence[str]) -> None:
        """Record a run, its root event and one open expectation per consumer."""
        from psycopg.types.json import Jsonb

        header = {k: v for k, v in root.items() if k != "payload"}

        def work(cursor: psycopg.Cursor[Any]) -> None:
            cursor.execute(
                self._sql(
                    "INSERT INTO {schema}.migrate_runs (run_id, type) VALUES (%s, %s)"
                    " ON CONFLICT DO NOTHING"
                ),
                (root["run_id"], root["type"]),
            )
            cursor.execute(
                self._sql(
                    "INSERT INTO {schema}.migrate_run_events"
                    " (event_id, run_id, type, parent_id, header, payload)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
                ),
                (
                    root["event_id"],
                    root["run_id"],
                    root["type"],
                    root.get("parent_id"),
                    Jsonb(header),
                    Jsonb(root["payload"]),
                ),
            )
            self._expect(cursor, root["run_id"], root["event_id"], root["type"], consumers)

        self._run(work)

    def _expect(
        self,
        cursor: psycopg.Cursor[Any],
        run_id: str,
        event_id: str,
        type: str,
        plugins: Sequence[str],
    ) -> None:
        for plugin in plugins:
            cursor.execute(
                self._sql(
                    "INSERT INTO {schema}.migrate_run_expectations (event_id, plugin, run_id, type)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING"
                ),
                (event_id, plugin, run_id, type),
            )

    def settle_all(
        self, notices: Sequence[dict[str, Any]], consumers_of: Callable[[str], Sequence[str]]
    ) -> list[Settled | Exception | None]:
        """Apply settled notices (validated by the caller) in one transaction. For each:
        settle the expectation (event, plugin); for outcome "produced" record the produced
        event's header and expect each plugin that consumes its type. The result is the
        run's status change, or None for an unknown run.

        One commit (one fsync) for a batch,
        where a commit per notice made the database the chain's bottleneck. Each notice
        has a savepoint of its own, so one that PostgreSQL refuses (its exception is in
        the list) does not undo the others; a lost connection raises StoreUnavailable
        and the whole batch is applied again (every write is idempotent)."""
        import psycopg

        def work(cursor: psycopg.Cursor[Any]) -> list[Settled | Exception | None]:
            results: list[Settled | Exception | None] = []
            for notice in notices:
                try:
                    with cursor.connection.transaction():  # a savepoint
                        results.append(self._settle(cursor, notice, consumers_of))
                except (psycopg.OperationalError, psycopg.InterfaceError):
                    raise
                except psycopg.Error as exc:
                    results.append(exc)
            return results

        done: list[Settled | Exception | None] = self._run(work)
        return done

    def _settle(
        self,
        cursor: psycopg.Cursor[Any],
        notice: dict[str, Any],
        consumers_of: Callable[[str], Sequence[str]],
    ) -> Settled | None:
        from psycopg.types.json import Jsonb

        run_id = notice["run_id"]
        cursor.execute(
            self._sql("SELECT status FROM {schema}.migrate_runs WHERE run_id = %s FOR UPDATE"),
            (run_id,),
        )
        row = cursor.fetchone()
        if row is None:
            return None
        before = row[0]
        cursor.execute(
            self._sql(
                "INSERT INTO {schema}.migrate_run_expectations AS e"
                " (event_id, plugin, run_id, type, outcome, error, attempts, settled_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, now())"
                " ON CONFLICT (event_id, plugin) DO UPDATE SET outcome = EXCLUDED.outcome,"
                " error = EXCLUDED.error, attempts = EXCLUDED.attempts, settled_at = now()"
                " WHERE e.outcome IS NULL"
            ),
            (
                notice["event_id"],
                notice["plugin"],
                run_id,
                notice["type"],
                notice["outcome"],
                notice.get("error"),
                notice.get("attempts"),
            ),
        )
        produced = notice.get("produced")
        if notice["outcome"] == "produced" and produced:
            cursor.execute(
                self._sql(
                    "INSERT INTO {schema}.migrate_run_events"
                    " (event_id, run_id, type, parent_id, header)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
                ),
                (
                    produced["event_id"],
                    run_id,
                    produced["type"],
                    produced.get("parent_id"),
                    Jsonb(produced),
                ),
            )
            consumers = consumers_of(produced["type"])
            self._expect(cursor, run_id, produced["event_id"], produced["type"], consumers)
        after, error = self._status(cursor, run_id)
        if after != before:
            cursor.execute(
                self._sql(
                    "UPDATE {schema}.migrate_runs SET status = %s, error = %s,"
                    " finished_at = CASE WHEN %s = 'running' THEN NULL ELSE now() END"
                    " WHERE run_id = %s"
                ),
                (after, error, after, run_id),
            )
        return Settled(run_id, before, after)

    def _status(self, cursor: psycopg.Cursor[Any], run_id: str) -> tuple[str, str | None]:
        cursor.execute(
            self._sql(
                "SELECT plugin, type, event_id, attempts, error"
                " FROM {schema}.migrate_run_expectations"
                " WHERE run_id = %s AND outcome = 'dead' ORDER BY settled_at, plugin LIMIT 1"
            ),
            (run_id,),
        )
        dead = cursor.fetchone()
        if dead is not None:
            plugin, type, event_id, attempts, error = dead
            tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
            return FAILED, (
                f"plugin {plugin} failed on {type} event {event_id}{tries}: "
                f"{error or 'no error given'}"
            )
        cursor.execute(
            self._sql(
                "SELECT EXISTS (SELECT 1 FROM {schema}.migrate_run_expectations"
                " WHERE run_id = %s AND outcome IS NULL)"
            ),
            (run_id,),
        )
        row = cursor.fetchone()
        return (RUNNING if row is not None and row[0] else DONE), None

    def run(self, run_id: str, *, after_seq: int = 0) -> Run | None:
        """The run's status and its events recorded after `after_seq`; None when unknown.

        The status is read before the events, in one transaction: when it is not
        `running`, the events returned are all the run will have."""

        def work(cursor: psycopg.Cursor[Any]) -> Run | None:
            cursor.execute(
                self._sql("SELECT status, error FROM {schema}.migrate_runs WHERE run_id = %s"),
                (run_id,),
            )
            row = cursor.fetchone()
            if row is None:
                return None
            cursor.execute(
                self._sql(
                    "SELECT seq, header FROM {schema}.migrate_run_events"
                    " WHERE run_id = %s AND seq > %s ORDER BY seq"
                ),
                (run_id, after_seq),
            )
            return Run(run_id, row[0], row[1], [(seq, header) for seq, header in cursor])

        result: Run | None = self._run(work)
        return result

    def unpublished_roots(self) -> list[dict[str, Any]]:
        """The root events of running runs that no plugin has settled yet: their
        publication may have been lost (a crash between commit and publish)."""

        def work(cursor: psycopg.Cursor[Any]) -> list[dict[str, Any]]:
            cursor.execute(
                self._sql(
                    "SELECT ev.header, ev.payload FROM {schema}.migrate_runs r"
                    " JOIN {schema}.migrate_run_events ev"
                    "   ON ev.run_id = r.run_id AND ev.event_id = r.run_id"
                    " WHERE r.status = 'running' AND NOT EXISTS ("
                    "   SELECT 1 FROM {schema}.migrate_run_expectations x"
                    "   WHERE x.event_id = r.run_id AND x.outcome IS NOT NULL)"
                    " ORDER BY ev.seq"
                ),
            )
            return [{**header, "payload": payload or {}} for header, payload in cursor]

        result: list[dict[str, Any]] = self._run(work)
        return result


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else 'no message'}"
