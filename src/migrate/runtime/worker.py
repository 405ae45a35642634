"""The worker role (DESIGN 3.9): consume events, call the plugin, publish the result.

One loop on one thread, as dramatiq's worker: read a few messages of
MIGRATE_CONSUMES for group MIGRATE_GROUP as consumer MIGRATE_CONSUMER, handle
them one by one, now and then take over the messages a dead consumer left
unacked (MIGRATE_CLAIM_IDLE_MS). Handling one event:

1. decode the envelope; a malformed message is dead-lettered with the reason
   (and settled when its event_id and run_id can be read), acked, and the loop
   goes on;
2. `recall("migrate:done:<group>:<event_id>")`: an event handled before (the
   worker died after the call, before the ack) is not handed to the plugin
   again: what it produced then is published again, with the same event id;
3. call the plugin (through `concerns.wrap`) inside a span whose parent is the
   envelope's traceparent; on an exception retry after MIGRATE_RETRY_BASE_S *
   2**n seconds, up to MIGRATE_MAX_ATTEMPTS calls, then dead-letter it with the
   error and the attempt count;
4. the result becomes one event: of type `result["event"]` when that is one of
   MIGRATE_PRODUCES, else of the single produced type; none when the plugin
   produces nothing or returned None. Its id is `envelope.child_id(group,
   event_id)`, its parent the consumed event, its run the consumed event's run;
5. remember that envelope (or "none") under the key of step 2, then publish it,
   then the settled notice (`bus.SETTLED`), then ack: at-least-once delivery
   with an idempotent effect.

A message delivered more than MIGRATE_MAX_ATTEMPTS + 5 times without being
settled (its handling killed the worker, or failed in the bus, every time) is
dead-lettered instead of being tried forever.

An unreachable bus is retried with backoff and reported by `ready()`; nothing
here raises out of `run()`. Once `stop` is set the loop reads nothing more,
finishes the event in flight (publish and ack) and returns; messages read but
not started stay pending for this consumer name (read again on restart) or for
another consumer (claimed after the idle time).
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from typing import Any

from . import concerns, envelope, metrics, settings, tracing
from .bus import SETTLED, Bus, BusUnavailable, Delivery
from .log import log

DONE_TTL_S = 7 * 24 * 3600
BLOCK_MS = 1000  # longest wait for new messages: how soon `stop` is noticed when idle
BATCH = 10
MAX_BACKOFF_S = 30.0
MORE_DELIVERIES = 5  # deliveries beyond MIGRATE_MAX_ATTEMPTS before a message is dead-lettered


class _Abandoned(Exception):
    """`stop` was set while an event waited to be retried: left unacked, not dead-lettered."""


class Worker:
    def __init__(self, handler: concerns.Handler, *, plugin: str, bus: Bus | None = None) -> None:
        self.plugin = plugin
        self.version = settings.get("MIGRATE_PLUGIN_VERSION")
        self.handler = concerns.wrap(handler, plugin=plugin, version=self.version)
        self.consumes = settings.get_list("MIGRATE_CONSUMES")
        self.produces = settings.get_list("MIGRATE_PRODUCES")
        self.group = settings.get("MIGRATE_GROUP")
        self.consumer = settings.get("MIGRATE_CONSUMER")
        self.max_attempts = max(1, settings.get_int("MIGRATE_MAX_ATTEMPTS"))
        self.retry_base_s = max(0.0, settings.get_float("MIGRATE_RETRY_BASE_S"))
        self.claim_idle_ms = max(1, settings.get_int("MIGRATE_CLAIM_IDLE_MS"))
        self._bus = bus
        self._bus_lock = threading.Lock()
        self._running = False
        self._problem: str | None = "starting"

    # -- readiness ---------------------------------------------------------------------------

    def ready(self) -> str | None:
        """None when the worker can consume, else why not (what `/readyz` shows)."""
        if not self.consumes:
            return "MIGRATE_CONSUMES is empty: set the event types this worker consumes"
        if self._running:
            return self._problem
        try:
            self._connect().ping()
        except Exception as exc:
            return _reason(exc)
        return None

    # -- the loop ----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set; then finish the event in flight and return."""
        try:
            tracing.setup()
        except Exception as exc:  # tracing is an aid: never a reason not to consume
            log("warning", "tracing is off: its setup failed", error=_reason(exc))
        self._running = True
        backoff = 0.5
        next_claim = 0.0
        claim_every = min(max(self.claim_idle_ms / 2000, 0.1), 30.0)
        block_ms = int(min(BLOCK_MS, max(claim_every * 1000, 50)))
        log(
            "info",
            "worker started",
            consumes=self.consumes,
            produces=self.produces,
            group=self.group,
            consumer=self.consumer,
        )
        try:
            while not stop.is_set():
                if not self.consumes:
                    self._problem = self.ready()
                    stop.wait(5.0)
                    continue
                try:
                    bus = self._connect()
                    deliveries: list[Delivery] = []
                    if time.monotonic() >= next_claim:
                        deliveries = bus.claim_stale(
                            self.consumes,
                            self.group,
                            self.consumer,
                            idle_ms=self.claim_idle_ms,
                            count=BATCH,
                        )
                        next_claim = time.monotonic() + claim_every
                        if deliveries:
                            log("info", "claimed stale events", count=len(deliveries))
                    if not deliveries:
                        deliveries = bus.consume(
                            self.consumes, self.group, self.consumer, block_ms=block_ms, count=BATCH
                        )
                    if self._problem is not None:
                        log("info", "bus reachable", bus=bus.kind)
                    self._problem = None
                    backoff = 0.5
                    for delivery in deliveries:
                        if stop.is_set():
                            break  # left pending: read again on restart, or claimed by another
                        self._handle(bus, delivery, stop)
                except _Abandoned:
                    break
                except Exception as exc:  # BusUnavailable or anything unforeseen: never crash
                    reason = _reason(exc)
                    if reason != self._problem:
                        log("error", "bus unavailable; retrying", error=reason, backoff_s=backoff)
                    self._problem = reason
                    stop.wait(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)
        finally:
            self._running = False
            self._problem = "stopped"
            log("info", "worker stopped", consumer=self.consumer)

    def close(self) -> None:
        with self._bus_lock:
            if self._bus is not None:
                self._bus.close()

    # -- one event ---------------------------------------------------------------------------

    def _handle(self, bus: Bus, delivery: Delivery, stop: threading.Event) -> None:
        try:
            event = envelope.decode(delivery.raw)
        except envelope.MalformedEvent as exc:
            self._malformed(bus, delivery, str(exc))
            return
        event_id: str = event["event_id"]
        event["run_id"] = str(event.get("run_id") or event_id)
        done_key = f"migrate:done:{self.group}:{event_id}"
        attempts = 0
        remembered = bus.recall(done_key)
        if remembered is None:
            if delivery.deliveries > self.max_attempts + MORE_DELIVERIES:
                error = (
                    f"delivered {delivery.deliveries} times without being settled "
                    "(the worker died or failed while handling it each time)"
                )
                self._dead(bus, delivery, event, error, delivery.deliveries)
                return
            outcome = self._call(event, stop)
            if isinstance(outcome, _Failure):
                self._dead(bus, delivery, event, outcome.error, outcome.attempts)
                return
            fresh, attempts = outcome
            record = envelope.encode(fresh).decode() if fresh is not None else "none"
            if bus.remember(done_key, record, ttl_s=DONE_TTL_S):
                remembered = record
            else:
                # another consumer handled it meanwhile (a claim raced with a slow call):
                # publish what that one remembered, so both publish the same event
                remembered = bus.recall(done_key) or record
                log("info", "handled by another consumer meanwhile", event_id=event_id)
        else:
            log("info", "handled before: publishing the remembered result", event_id=event_id)
        produced: envelope.Envelope | None = (
            None if remembered == "none" else envelope.decode(remembered)
        )
        if produced is not None:
            bus.publish(produced["type"], envelope.encode(produced))
            metrics.produced(self.plugin, produced["type"])
        self._settle(
            bus,
            event_id=event_id,
            run_id=event["run_id"],
            type=delivery.type,
            outcome="produced" if produced is not None else "none",
            produced=envelope.header(produced) if produced is not None else None,
            error=None,
            attempts=attempts,
        )
        bus.ack(self.group, delivery)
        metrics.consumed(self.plugin, delivery.type)
        log(
            "info",
            "handled",
            event_id=event_id,
            type=delivery.type,
            run_id=event["run_id"],
            produced=produced["type"] if produced is not None else None,
            produced_id=produced["event_id"] if produced is not None else None,
            attempts=attempts,
        )

    def _call(self, event: envelope.Envelope, stop: threading.Event) -> _Failure | tuple[Any, int]:
        """Call the plugin with retries; the produced envelope (or None) and the call count."""
        attributes = {
            "migrate.plugin": self.plugin,
            "migrate.event_type": event["type"],
            "migrate.event_id": event["event_id"],
            "migrate.run_id": str(event["run_id"]),
        }
        with tracing.span(
            f"{self.plugin} {event['type']}",
            traceparent=event.get("traceparent") or None,
            attributes=attributes,
        ) as traceparent:
            attempt = 0
            while True:
                attempt += 1
                try:
                    result = self.handler(event["payload"])
                    break
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    log(
                        "warning" if attempt < self.max_attempts else "error",
                        "the plugin raised",
                        event_id=event["event_id"],
                        attempt=attempt,
                        max_attempts=self.max_attempts,
                        error=error,
                        **({"traceback": traceback.format_exc(limit=20)} if attempt == 1 else {}),
                    )
                    if attempt >= self.max_attempts:
                        tracing.failed(error)
                        return _Failure(error, attempt)
                    delay = min(self.retry_base_s * 2 ** (attempt - 1), MAX_BACKOFF_S)
                    if stop.wait(delay):
                        log("info", "stopping: left for redelivery", event_id=event["event_id"])
                        raise _Abandoned from None
            try:
                return self._produced(event, result, traceparent), attempt
            except ValueError as exc:
                tracing.failed(str(exc))
                return _Failure(str(exc), attempt)

    def _produced(
        self, event: envelope.Envelope, result: Any, traceparent: str
    ) -> envelope.Envelope | None:
        """The envelope the result becomes, or None; ValueError when it cannot be one."""
        if result is None or not self.produces:
            return None
        if not isinstance(result, dict):
            raise ValueError(
                f"the plugin returned {type(result).__name__}, not a JSON object: "
                "cannot publish it as an event"
            )
        wanted = result.get("event")
        if isinstance(wanted, str) and wanted in self.produces:
            type_ = wanted
        elif len(self.produces) == 1:
            type_ = self.produces[0]
        else:
            raise ValueError(
                f"the plugin returned event {wanted!r}, which is not one of MIGRATE_PRODUCES "
                f"({', '.join(self.produces)}): return {{'event': TYPE, ...}} with one of them"
            )
        try:
            produced = envelope.new(
                type_,
                result,
                run_id=event["run_id"],
                parent_id=event["event_id"],
                source=self.plugin,
                traceparent=traceparent,
                event_id=envelope.child_id(self.group, event["event_id"]),
            )
            envelope.encode(produced)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"the plugin's result is not JSON: {exc}") from None
        return produced

    # -- failures ----------------------------------------------------------------------------

    def _dead(
        self,
        bus: Bus,
        delivery: Delivery,
        event: envelope.Envelope,
        error: str,
        attempts: int,
    ) -> None:
        bus.dead_letter(
            delivery, group=self.group, reason=error, attempts=attempts, event_id=event["event_id"]
        )
        metrics.dead_lettered(self.plugin, delivery.type)
        self._settle(
            bus,
            event_id=event["event_id"],
            run_id=event["run_id"],
            type=delivery.type,
            outcome="dead",
            produced=None,
            error=error,
            attempts=attempts,
        )
        bus.ack(self.group, delivery)
        metrics.consumed(self.plugin, delivery.type)
        log(
            "error",
            "dead-lettered",
            event_id=event["event_id"],
            type=delivery.type,
            run_id=event["run_id"],
            error=error,
            attempts=attempts,
        )

    def _malformed(self, bus: Bus, delivery: Delivery, reason: str) -> None:
        event_id, run_id = _ids(delivery.raw)
        bus.dead_letter(
            delivery,
            group=self.group,
            reason=f"malformed event: {reason}",
            attempts=0,
            event_id=event_id,
        )
        metrics.dead_lettered(self.plugin, delivery.type)
        if event_id is not None and run_id is not None:
            self._settle(
                bus,
                event_id=event_id,
                run_id=run_id,
                type=delivery.type,
                outcome="dead",
                produced=None,
                error=f"malformed event: {reason}",
                attempts=0,
            )
        bus.ack(self.group, delivery)
        log(
            "error",
            "malformed event dead-lettered",
            type=delivery.type,
            message_id=delivery.message_id,
            event_id=event_id,
            reason=reason,
        )

    def _settle(
        self,
        bus: Bus,
        *,
        event_id: str,
        run_id: str,
        type: str,
        outcome: str,
        produced: dict[str, Any] | None,
        error: str | None,
        attempts: int,
    ) -> None:
        notice = {
            "event_id": event_id,
            "run_id": run_id,
            "type": type,
            "plugin": self.plugin,
            "group": self.group,
            "outcome": outcome,
            "produced": produced,
            "error": error,
            "attempts": attempts,
            "occurred_at": envelope.now(),
        }
        bus.publish(SETTLED, json.dumps(notice, ensure_ascii=False, default=str).encode())

    def _connect(self) -> Bus:
        with self._bus_lock:
            if self._bus is None:
                from .bus import connect

                self._bus = connect()
            return self._bus


class _Failure:
    def __init__(self, error: str, attempts: int) -> None:
        self.error = error
        self.attempts = attempts


def _ids(raw: bytes) -> tuple[str | None, str | None]:
    """event_id and run_id of a malformed message, when they can be read at all."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(document, dict):
        return None, None
    event_id = document.get("event_id")
    run_id = document.get("run_id", event_id)
    return (
        event_id if isinstance(event_id, str) and event_id else None,
        run_id if isinstance(run_id, str) and run_id else None,
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, BusUnavailable):
        return f"bus unavailable: {exc}"
    return f"{type(exc).__name__}: {exc}"
