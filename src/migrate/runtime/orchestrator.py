"""The orchestrator role (DESIGN 3.9): starts runs, follows them, shows them.

- `POST /runs {"event": TYPE, "payload": {...}}` -> 202 `{"run": ID, "url": "/runs/ID"}`:
  the root event is recorded with one expectation per plugin that consumes its
  type (runstore.py), then published on the bus.
- A consumer of the workers' settled notices (`migrate.settled`, group
  "orchestrator") settles the expectations and expects the consumers of each
  produced event, so a run is `done` once nothing is left to handle, and
  `failed` once an event was dead-lettered.
- `GET /runs/ID` shows the run; `GET /runs/ID/events` streams its events as
  Server-Sent Events until it ends.

The event graph, which plugin consumes and produces which types, comes from
MIGRATE_EVENT_GRAPH: `{"plugin": {"consumes": [...], "produces": [...]}}`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import envelope, settings
from .host import App, RequestHandler, Response, bus_check, error, json_response
from .log import log
from .runstore import RunStore, StoreUnavailable

if TYPE_CHECKING:
    from .bus.base import Bus, Delivery

GROUP = "orchestrator"
MAX_RUN_BODY = 1024 * 1024  # bytes; a larger POST /runs body is refused with 413
STREAM_POLL_S = 0.2  # how often a stream looks for new events
STREAM_KEEPALIVE_S = 15.0  # a comment line this often finds clients that left
STREAM_MAX_S = 600.0  # a stream ends after this long; the client reconnects (Last-Event-ID)
RETRY_S = (0.5, 1.0, 2.0, 5.0)  # waits between attempts while the bus or database is down
CONSUME_BLOCK_MS = 500
RUN_PATH = r"/runs/(?P<run>[A-Za-z0-9._-]{1,200})"


class GraphError(ValueError):
    """MIGRATE_EVENT_GRAPH is not a valid event graph."""


@dataclass(frozen=True)
class Graph:
    """Which plugins consume and produce which event types."""

    consumes: dict[str, tuple[str, ...]]  # plugin -> types
    produces: dict[str, tuple[str, ...]]

    @classmethod
    def parse(cls, text: str) -> Graph:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GraphError(f"MIGRATE_EVENT_GRAPH is not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise GraphError(
                'MIGRATE_EVENT_GRAPH must be a JSON object {"plugin": '
                '{"consumes": [...], "produces": [...]}}'
            )
        consumes: dict[str, tuple[str, ...]] = {}
        produces: dict[str, tuple[str, ...]] = {}
        for plugin, entry in document.items():
            where = f"MIGRATE_EVENT_GRAPH[{plugin!r}]"
            if not plugin:
                raise GraphError("MIGRATE_EVENT_GRAPH has a plugin with an empty name")
            if not isinstance(entry, dict):
                raise GraphError(f'{where} must be {{"consumes": [...], "produces": [...]}}')
            unknown = set(entry) - {"consumes", "produces"}
            if unknown:
                raise GraphError(f"{where} has unknown keys {sorted(unknown)}")
            for key, target in (("consumes", consumes), ("produces", produces)):
                types = entry.get(key, [])
                if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
                    raise GraphError(f"{where}[{key!r}] must be a list of event types")
                bad = [t for t in types if not envelope.TYPE.match(t)]
                if bad:
                    raise GraphError(f"{where}[{key!r}] has bad event types {bad}")
                target[plugin] = tuple(dict.fromkeys(types))
        # a graph where no plugin consumes an event (`{}`: an application with data and
        # no plugin yet) is valid: the orchestrator runs, and refuses every run (post_run)
        return cls(consumes, produces)

    def consumers_of(self, type: str) -> tuple[str, ...]:
        return tuple(sorted(p for p, types in self.consumes.items() if type in types))

    @property
    def accepted(self) -> list[str]:
        """The event types some plugin consumes: what a run may start with."""
        return sorted({t for types in self.consumes.values() for t in types})


class Orchestrator:
    def __init__(self, graph: Graph, store: RunStore, reader: RunStore, bus: Bus, feed: Bus):
        self.graph = graph
        self.store = store  # the consumer thread's connection
        self.reader = reader  # the HTTP threads' connection
        self.bus = bus  # publishing and readiness (HTTP threads)
        self.feed = feed  # the consumer of settled notices (main thread)
        self.consumer = settings.get("MIGRATE_CONSUMER")
        self.claim_idle_ms = settings.get_int("MIGRATE_CLAIM_IDLE_MS")
        self.prepared = threading.Event()  # the tables exist
        self.republish = threading.Event()  # roots whose publication may have failed
        self.republish.set()  # at start: a crash may have come between commit and publish
        self.stopping = threading.Event()

    # -- HTTP --------------------------------------------------------------

    def install(self, app: App) -> None:
        app.route("/runs", "POST", self.post_run)
        app.route(RUN_PATH, "GET", self.get_run)
        app.route(RUN_PATH + "/events", "GET", self.stream_run)
        app.checks.append(self.database_check)
        app.checks.append(bus_check(self.bus))
        app.main = self.run
        app.closers.extend((self.feed.close, self.bus.close, self.reader.close, self.store.close))

    def database_check(self) -> str | None:
        try:
            self.reader.ping()
        except StoreUnavailable as exc:
            return f"the database does not answer: {exc}"
        if not self.prepared.is_set():
            return "the run tables are not created yet"
        return None

    def post_run(self, request: RequestHandler, match: re.Match[str]) -> Response:
        from . import metrics, tracing
        from .bus.base import BusUnavailable

        body = request.read_json_object(MAX_RUN_BODY)
        if isinstance(body, Response):
            return body
        type = body.get("event")
        payload = body.get("payload", {})
        if not isinstance(type, str) or not type:
            return error(400, 'the body needs "event": the type of the event that starts the run')
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            return error(400, '"payload" must be a JSON object')
        consumers = self.graph.consumers_of(type)
        if not consumers:
            accepted = self.graph.accepted
            if not accepted:
                why = (
                    "the event graph (MIGRATE_EVENT_GRAPH) names no plugin that consumes an "
                    "event, so no run can start: add a plugin that consumes it"
                )
            else:
                why = f"start a run with one of {', '.join(accepted)}"
            return error(422, f"no plugin consumes {type!r}: {why}", accepted=accepted)
        if not self.prepared.is_set():
            return error(503, "the run store is not ready yet: try again", retry_after_s=1)
        parent = request.headers.get("traceparent")
        with tracing.span(
            f"run {type}", traceparent=parent, attributes={"migrate.event": type}
        ) as tp:
            root = envelope.new(type, payload, source="orchestrator", traceparent=tp)
        try:
            self.reader.create_run(root, consumers)
        except StoreUnavailable as exc:
            log("warning", "cannot record a run", error=str(exc))
            return error(503, f"the database does not answer: {exc}", retry_after_s=1)
        metrics.run_status("started")
        run_id = root["run_id"]
        try:
            self.bus.publish(type, envelope.encode(root))
        except BusUnavailable as exc:
            # recorded: published again by the consumer loop once the bus answers
            log("warning", "cannot publish a run's root event yet", run=run_id, error=str(exc))
            self.republish.set()
        log("info", "run started", run=run_id, type=type, consumers=list(consumers))
        url = f"/runs/{run_id}"
        return json_response(202, {"run": run_id, "url": url}, Location=url)

    def get_run(self, request: RequestHandler, match: re.Match[str]) -> Response:
        run_id = match["run"]
        try:
            run = self.reader.run(run_id)
        except StoreUnavailable as exc:
            return error(503, f"the database does not answer: {exc}")
        if run is None:
            return error(404, f"no run {run_id}")
        return json_response(
            200,
            {
                "run": run.run_id,
                "status": run.status,
                "events": [header for _, header in run.events],
                "error": run.error,
            },
        )

    def stream_run(self, request: RequestHandler, match: re.Match[str]) -> Response | None:
        """Server-Sent Events: each event as it is recorded, then `event: end`."""
        run_id = match["run"]
        try:
            after = int(request.headers.get("Last-Event-ID") or 0)
        except ValueError:
            after = 0
        try:
            run = self.reader.run(run_id, after_seq=after)
        except StoreUnavailable as exc:
            return error(503, f"the database does not answer: {exc}")
        if run is None:
            return error(404, f"no run {run_id}")
        request.send_head(
            200,
            "text/event-stream; charset=utf-8",
            {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            None,
        )
        started = last_write = time.monotonic()
        sent = 0
        try:
            while True:
                chunks = []
                for seq, header in run.events:
                    data = json.dumps(header, separators=(",", ":"))
                    chunks.append(f"id: {seq}\nevent: {header.get('type')}\ndata: {data}\n\n")
                    after = seq
                sent += len(run.events)
                if run.status != "running":
                    end = json.dumps({"status": run.status, "error": run.error})
                    chunks.append(f"event: end\ndata: {end}\n\n")
                now = time.monotonic()
                if not chunks and now - last_write >= STREAM_KEEPALIVE_S:
                    chunks.append(": keep-alive\n\n")  # a client that left makes this fail
                if chunks:
                    request.wfile.write("".join(chunks).encode())
                    request.wfile.flush()
                    last_write = now
                if run.status != "running":
                    break
                if now - started >= STREAM_MAX_S or request.server.stopping.is_set():
                    break
                if self.stopping.wait(STREAM_POLL_S):
                    break
                try:
                    polled = self.reader.run(run_id, after_seq=after)
                except StoreUnavailable:
                    continue  # the database is restarting: poll again
                if polled is None:
                    break
                run = polled
        except (ConnectionError, TimeoutError):
            pass  # the client left
        request.close_connection = True
        request.log_request_line(200)
        log("debug", "stream ended", run=run_id, events=sent, status=run.status)
        return None

    # -- the consumer of settled notices -------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Read settled notices until `stop`; the bus and the database may come and go."""
        from .bus.base import SETTLED, BusUnavailable

        failures = 0
        down: str | None = None
        backlog: list[Delivery] = []
        next_claim = 0.0
        try:
            while not stop.is_set():
                try:
                    if not self.prepared.is_set():
                        self.store.setup()
                        self.prepared.set()
                        log("info", "run store ready", schema=self.store.schema)
                    if self.republish.is_set():
                        self.republish.clear()
                        try:
                            self._republish()
                        except BaseException:
                            self.republish.set()
                            raise
                    if not backlog:
                        backlog = self.feed.consume(
                            [SETTLED], GROUP, self.consumer, block_ms=CONSUME_BLOCK_MS, count=100
                        )
                        if time.monotonic() >= next_claim:
                            backlog += self.feed.claim_stale(
                                [SETTLED], GROUP, self.consumer, idle_ms=self.claim_idle_ms
                            )
                            next_claim = time.monotonic() + max(self.claim_idle_ms / 2000, 1.0)
                    if backlog:
                        self._handle(backlog)  # one transaction for the batch
                        for delivery in backlog:
                            self.feed.ack(GROUP, delivery)
                        backlog = []
                    if down is not None:
                        log("info", f"{down} answers again")
                        down = None
                    failures = 0
                except (BusUnavailable, StoreUnavailable) as exc:
                    what = "the bus" if isinstance(exc, BusUnavailable) else "the database"
                    if down != what:
                        log("warning", f"{what} does not answer: retrying", error=str(exc))
                        down = what
                    if isinstance(exc, BusUnavailable):
                        self.republish.set()  # a POST may have failed to publish meanwhile
                    stop.wait(RETRY_S[min(failures, len(RETRY_S) - 1)])
                    failures += 1
        finally:
            self.stopping.set()

    def _republish(self) -> None:
        roots = self.store.unpublished_roots()
        for root in roots:
            self.bus.publish(root["type"], envelope.encode(root))
        if roots:
            log("info", "published root events again", runs=[r["run_id"] for r in roots])

    def _handle(self, deliveries: list[Delivery]) -> None:
        """Apply a batch of notices in one transaction; a notice that cannot be applied
        is logged (and then acked with the others)."""
        from . import metrics

        notices: list[dict[str, Any]] = []
        for delivery in deliveries:
            try:
                notices.append(parse_notice(delivery.raw))
            except ValueError as exc:
                log(
                    "warning",
                    "malformed settled notice: dropped",
                    id=delivery.message_id,
                    reason=str(exc),
                )
        results = self.store.settle_all(notices, self.graph.consumers_of) if notices else []
        for notice, settled in zip(notices, results, strict=True):
            if isinstance(settled, Exception):  # a value PostgreSQL refuses: never block on it
                log(
                    "error",
                    "cannot record a settled notice: dropped",
                    run=notice["run_id"],
                    error=f"{type(settled).__name__}: {settled}",
                )
            elif settled is None:
                log("debug", "settled notice of an unknown run", run=notice["run_id"])
            elif settled.after != settled.before and settled.after != "running":
                metrics.run_status(settled.after)
                log("info", f"run {settled.after}", run=settled.run_id)


def parse_notice(raw: bytes) -> dict[str, Any]:
    """A settled notice (bus/base.py), checked; ValueError says what is wrong."""
    try:
        notice = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(notice, dict):
        raise ValueError("not a JSON object")
    for key in ("event_id", "run_id", "type", "plugin", "outcome"):
        if not isinstance(notice.get(key), str) or not notice[key]:
            raise ValueError(f"missing or empty {key!r}")
    if notice["outcome"] not in ("produced", "none", "dead"):
        raise ValueError(f"unknown outcome {notice['outcome']!r}")
    if notice.get("error") is not None and not isinstance(notice["error"], str):
        notice["error"] = str(notice["error"])
    attempts = notice.get("attempts")
    if attempts is not None and (not isinstance(attempts, int) or isinstance(attempts, bool)):
        raise ValueError("'attempts' is not an integer")
    if notice["outcome"] == "produced":
        produced = notice.get("produced")
        if not isinstance(produced, dict):
            raise ValueError("outcome 'produced' without a 'produced' header")
        for key in ("event_id", "type"):
            if not isinstance(produced.get(key), str) or not produced[key]:
                raise ValueError(f"'produced' has no {key!r}")
        if not envelope.TYPE.match(produced["type"]):
            raise ValueError(f"'produced' has a bad type {produced['type']!r}")
        produced.pop("payload", None)
    return notice


def build() -> App:
    """The orchestrator's App from the environment; GraphError/ValueError when misconfigured."""
    from .bus import connect

    graph = Graph.parse(settings.get("MIGRATE_EVENT_GRAPH"))
    url, schema = settings.get("DATABASE_URL"), settings.get("DATABASE_SCHEMA")
    if not settings.get("MIGRATE_BUS"):
        raise ValueError("MIGRATE_BUS is not set: the orchestrator needs the bus (redis or kafka)")
    orchestrator = Orchestrator(
        graph, RunStore(url, schema), RunStore(url, schema), connect(), connect()
    )
    app = App("orchestrator")
    orchestrator.install(app)
    level, message = "info", "event graph"
    if not graph.accepted:  # a data-only application: ready, and refuses every run
        level = "warning"
        message = "event graph: no plugin consumes an event, every POST /runs is refused (422)"
    log(level, message, plugins=sorted(graph.consumes), accepted=graph.accepted)
    return app
