"""The event bus: one interface, two implementations (Redis Streams, Kafka).

Naming (DESIGN 3.9): one stream or topic per event type, Redis key
`events.<type>`, Kafka topic `<type>`; dead letters of a type go to
`events.<type>.dlq` / `<type>.dlq`. Workers also publish one *settled notice*
per handled event on type `migrate.settled` (Redis `events.migrate.settled`,
Kafka `migrate.settled`): what the orchestrator reads to know when a run is
done. A notice is a JSON object:

    {"event_id": consumed event, "run_id", "type": consumed type, "plugin",
     "group", "outcome": "produced" | "none" | "dead",
     "produced": header of the produced envelope or null,
     "error": str or null, "attempts": int, "occurred_at"}

Delivery is at-least-once: a message is acked only after what it caused was
published. Implementations are synchronous and thread-safe for one consumer
per instance; every network call has a timeout; an unreachable server raises
`BusUnavailable`, never hangs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

SETTLED = "migrate.settled"


class BusUnavailable(ConnectionError):
    """The bus does not answer (readiness fails; callers retry)."""


@dataclass(frozen=True)
class Delivery:
    type: str  # the event type (stream/topic without prefix or suffix)
    message_id: str  # the bus's id (Redis stream entry id, Kafka "partition:offset")
    raw: bytes  # the message body as published
    deliveries: int = 1  # how many times it was delivered (1 = first time)


@dataclass(frozen=True)
class DeadLetter:
    type: str
    message_id: str
    group: str
    reason: str
    attempts: int
    raw: bytes
    event_id: str | None


class Bus(Protocol):
    kind: str  # "redis" | "kafka"

    def ping(self) -> None:
        """Raise BusUnavailable when the server does not answer."""

    def publish(self, type: str, body: bytes) -> str:
        """Append one message to the stream/topic of `type`; return its id."""

    def consume(
        self, types: Sequence[str], group: str, consumer: str, *, block_ms: int, count: int = 10
    ) -> list[Delivery]:
        """New messages of `types` for `group` (creating the group at the start of each
        stream when missing), and first this consumer's own unacked ones after a restart."""

    def claim_stale(
        self, types: Sequence[str], group: str, consumer: str, *, idle_ms: int, count: int = 10
    ) -> list[Delivery]:
        """Take over messages delivered to other consumers of `group` and unacked for
        `idle_ms` (Redis XAUTOCLAIM; Kafka rebalancing does this itself: returns [])."""

    def ack(self, group: str, delivery: Delivery) -> None:
        """Mark `delivery` handled by `group`."""

    def dead_letter(
        self, delivery: Delivery, *, group: str, reason: str, attempts: int, event_id: str | None
    ) -> None:
        """Publish `delivery` to the dead letters of its type, with the reason."""

    def dead_letters(self, type: str, *, limit: int = 100) -> list[DeadLetter]:
        """The dead letters of `type`, oldest first."""

    def lag(self, types: Sequence[str], group: str) -> int:
        """Messages of `types` that `group` has not acked yet (pending + not yet read)."""

    def remember(self, key: str, value: str, *, ttl_s: int) -> bool:
        """Store `value` under `key` unless it exists; True when stored (idempotency keys,
        the cache). Kafka has no such store: it uses Redis when REDIS_URL is set."""

    def recall(self, key: str) -> str | None:
        """The value stored under `key`, or None."""

    def close(self) -> None: ...
