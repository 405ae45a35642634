"""The Kafka bus (DESIGN 3.9), with confluent-kafka (librdkafka), imported lazily.

- One topic per event type, named as the type; dead letters go to `<type>.dlq`,
  the message body as the value and the reason, group, attempts, event_id, type
  and message_id as headers. Topics are created on first use (broker defaults
  for partitions and replication).
- One consumer per (group, consumer name), `enable.auto.commit=false`,
  `auto.offset.reset=earliest` (events published before the group existed are
  consumed); `ack` commits the offset after the message, synchronously, so a
  message is committed only once what it caused was published. Acks must come
  in order per partition (the worker handles messages in the order read).
  Messages handed out and not acked are read again by the next `consume` of
  the same instance (it seeks back), and by the partition's next owner after a
  restart or a rebalance (they were never committed).
- `claim_stale` returns []: the group's rebalancing hands a dead consumer's
  partitions to the living. Kafka does not count deliveries: `deliveries` is 1.
- `lag`: high watermark minus committed offset, summed over partitions.
- `remember` / `recall` use Redis when `redis_url` is set; without it they use
  a dict in this process, and idempotency then does NOT survive a restart (a
  message redelivered to a new process is handled again).

Every call has a timeout; librdkafka's errors are raised as `BusUnavailable`.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from .base import BusUnavailable, DeadLetter, Delivery

DLQ_SUFFIX = ".dlq"
TIMEOUT_S = 5.0
HEADERS = ("reason", "group", "attempts", "event_id", "type", "message_id")


class KafkaBus:
    kind = "kafka"

    def __init__(self, bootstrap: str, redis_url: str = "") -> None:
        if not bootstrap:
            raise BusUnavailable("KAFKA_BOOTSTRAP_SERVERS is empty: set it to HOST:PORT[,...]")
        self.bootstrap = bootstrap
        self._lock = threading.RLock()
        self._producer: Any = None
        self._admin: Any = None
        self._consumers: dict[tuple[str, str], Any] = {}
        self._subscribed: dict[tuple[str, str], tuple[str, ...]] = {}
        self._unacked: dict[tuple[str, str], dict[tuple[str, int], set[int]]] = {}
        self._topics: set[str] = set()
        self._broker_error: str | None = None
        self._memory: dict[str, tuple[str, float]] = {}
        self._store: Any = None
        if redis_url:
            from .redis import RedisBus

            self._store = RedisBus(redis_url)

    # -- clients -----------------------------------------------------------------------------

    def _config(self, **extra: Any) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.bootstrap,
            "socket.timeout.ms": int(TIMEOUT_S * 1000),
            "socket.connection.setup.timeout.ms": int(TIMEOUT_S * 1000),
            "log_level": 2,  # connection failures come through error_cb, not stderr
            "error_cb": self._on_error,
            **extra,
        }

    def _on_error(self, error: Any) -> None:
        """librdkafka reports broker trouble here, not as exceptions."""
        self._broker_error = str(error)

    def _exception(self, what: str, exc: BaseException) -> BusUnavailable:
        detail = str(exc) or type(exc).__name__  # a timed-out future says nothing
        return BusUnavailable(f"Kafka at {self.bootstrap}: {what}: {detail}")

    def _producer_client(self) -> Any:
        with self._lock:
            if self._producer is None:
                from confluent_kafka import Producer

                self._producer = Producer(
                    self._config(
                        **{"message.timeout.ms": 30_000, "enable.idempotence": False, "acks": "all"}
                    )
                )
            return self._producer

    def _admin_client(self) -> Any:
        with self._lock:
            if self._admin is None:
                from confluent_kafka.admin import AdminClient

                self._admin = AdminClient(self._config())
            return self._admin

    def _ensure_topics(self, topics: Sequence[str]) -> None:
        missing = [t for t in topics if t not in self._topics]
        if not missing:
            return
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

        admin = self._admin_client()
        try:
            futures = admin.create_topics([NewTopic(t) for t in missing], request_timeout=TIMEOUT_S)
        except KafkaException as exc:
            raise self._exception("create topics", exc) from None
        for topic, future in futures.items():
            try:
                future.result(timeout=TIMEOUT_S)
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                if getattr(error, "code", lambda: None)() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise self._exception(f"create topic {topic}", exc) from None
            except Exception as exc:  # the future timed out
                raise self._exception(f"create topic {topic}", exc) from None
            with self._lock:
                self._topics.add(topic)

    def ping(self) -> None:
        from confluent_kafka import KafkaException

        try:
            self._admin_client().list_topics(timeout=TIMEOUT_S)
        except KafkaException as exc:
            raise self._exception("no broker answers", exc) from None
        self._broker_error = None

    # -- publishing --------------------------------------------------------------------------

    def publish(self, type: str, body: bytes) -> str:
        return self._produce(type, body, None)

    def _produce(self, topic: str, body: bytes, headers: list[tuple[str, bytes]] | None) -> str:
        from confluent_kafka import KafkaException

        self._ensure_topics([topic])
        producer = self._producer_client()
        outcome: dict[str, Any] = {}

        def delivered(error: Any, message: Any) -> None:
            outcome["error"] = error
            if error is None:
                outcome["id"] = f"{message.partition()}:{message.offset()}"

        try:
            producer.produce(topic, value=body, headers=headers, on_delivery=delivered)
            left = producer.flush(TIMEOUT_S)
        except (KafkaException, BufferError) as exc:
            raise self._exception(f"publish to {topic}", exc) from None
        if left or "error" not in outcome:
            producer.purge(in_queue=True, in_flight=False)  # the caller retries: no late copy
            raise BusUnavailable(f"Kafka at {self.bootstrap}: publish to {topic} timed out")
        if outcome["error"] is not None:
            raise BusUnavailable(
                f"Kafka at {self.bootstrap}: publish to {topic}: {outcome['error']}"
            )
        return str(outcome["id"])

    # -- consuming ---------------------------------------------------------------------------

    def _consumer(self, types: Sequence[str], group: str, consumer: str) -> Any:
        key = (group, consumer)
        with self._lock:
            client = self._consumers.get(key)
            if client is None:
                from confluent_kafka import Consumer

                client = Consumer(
                    self._config(
                        **{
                            "group.id": group,
                            "client.id": consumer,
                            "enable.auto.commit": False,
                            "auto.offset.reset": "earliest",
                            "session.timeout.ms": 10_000,
                        }
                    )
                )
                self._consumers[key] = client
            if self._subscribed.get(key) != tuple(types):
                self._ensure_topics(types)
                client.subscribe(list(types))
                self._subscribed[key] = tuple(types)
            return client

    def consume(
        self, types: Sequence[str], group: str, consumer: str, *, block_ms: int, count: int = 10
    ) -> list[Delivery]:
        from confluent_kafka import TopicPartition

        if not types:
            return []
        client = self._consumer(types, group, consumer)
        unacked = self._unacked.setdefault((group, consumer), {})
        for (topic, partition), offsets in list(unacked.items()):
            if offsets:  # handed out, never acked: read them again first
                # when the partition went to another consumer, that one reads them
                with contextlib.suppress(Exception):
                    client.seek(TopicPartition(topic, partition, min(offsets)))
            unacked.pop((topic, partition), None)
        self._broker_error = None
        try:
            messages = client.consume(num_messages=count, timeout=max(block_ms, 1) / 1000)
        except Exception as exc:
            raise self._exception("consume", exc) from None
        deliveries = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise BusUnavailable(f"Kafka at {self.bootstrap}: {error}")
                continue  # partition EOF, a topic not there yet: not a message
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            unacked.setdefault((topic, partition), set()).add(offset)
            deliveries.append(
                Delivery(
                    type=topic,
                    message_id=f"{partition}:{offset}",
                    raw=message.value() or b"",
                )
            )
        if not deliveries and self._broker_error is not None:
            self.ping()  # raises BusUnavailable when no broker answers
        return deliveries

    def claim_stale(
        self, types: Sequence[str], group: str, consumer: str, *, idle_ms: int, count: int = 10
    ) -> list[Delivery]:
        return []  # rebalancing hands a dead consumer's partitions to the others

    def ack(self, group: str, delivery: Delivery) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        partition, offset = (int(part) for part in delivery.message_id.split(":"))
        for (known_group, consumer), client in list(self._consumers.items()):
            if known_group != group:
                continue
            offsets = self._unacked.get((group, consumer), {}).get((delivery.type, partition))
            if offsets is None or offset not in offsets:
                continue
            try:
                client.commit(
                    offsets=[TopicPartition(delivery.type, partition, offset + 1)],
                    asynchronous=False,
                )
            except KafkaException as exc:
                raise self._exception(
                    f"commit {delivery.type} {delivery.message_id}", exc
                ) from None
            offsets.discard(offset)
            return
        raise BusUnavailable(
            f"Kafka: {delivery.type} {delivery.message_id} was not handed out to group {group} "
            "by this instance (or its partition moved): it will be delivered again"
        )

    # -- dead letters ------------------------------------------------------------------------

    def dead_letter(
        self, delivery: Delivery, *, group: str, reason: str, attempts: int, event_id: str | None
    ) -> None:
        values = {
            "reason": reason,
            "group": group,
            "attempts": str(attempts),
            "event_id": event_id or "",
            "type": delivery.type,
            "message_id": delivery.message_id,
        }
        headers = [(name, values[name].encode()) for name in HEADERS]
        self._produce(delivery.type + DLQ_SUFFIX, delivery.raw, headers)

    def dead_letters(self, type: str, *, limit: int = 100) -> list[DeadLetter]:
        from confluent_kafka import Consumer, KafkaException, TopicPartition

        topic = type + DLQ_SUFFIX
        reader = Consumer(
            self._config(
                **{
                    "group.id": f"migrate-dlq-reader-{uuid.uuid4().hex}",
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                }
            )
        )
        rows: list[tuple[int, DeadLetter]] = []
        try:
            metadata = reader.list_topics(topic, timeout=TIMEOUT_S)
            partitions = metadata.topics.get(topic)
            if partitions is None or partitions.error is not None:
                return []
            assignment, ends = [], {}
            for number in partitions.partitions:
                low, high = reader.get_watermark_offsets(
                    TopicPartition(topic, number), timeout=TIMEOUT_S
                )
                if high > low:
                    assignment.append(TopicPartition(topic, number, low))
                    ends[number] = high
            if not assignment:
                return []
            reader.assign(assignment)
            deadline = time.monotonic() + 3 * TIMEOUT_S
            while ends and time.monotonic() < deadline:
                messages: list[Any] = reader.consume(num_messages=100, timeout=0.5)
                for message in messages:
                    if message.error() is not None:
                        continue
                    fields = {k: (v or b"").decode() for k, v in message.headers() or []}
                    rows.append(
                        (
                            message.timestamp()[1],
                            DeadLetter(
                                type=fields.get("type", type),
                                message_id=fields.get("message_id", ""),
                                group=fields.get("group", ""),
                                reason=fields.get("reason", ""),
                                attempts=int(fields.get("attempts") or 0),
                                raw=message.value() or b"",
                                event_id=fields.get("event_id") or None,
                            ),
                        )
                    )
                    if message.offset() + 1 >= ends.get(message.partition(), 0):
                        ends.pop(message.partition(), None)
        except KafkaException as exc:
            raise self._exception(f"read {topic}", exc) from None
        finally:
            reader.close()
        rows.sort(key=lambda row: row[0])
        return [letter for _, letter in rows[:limit]]

    # -- lag, idempotency --------------------------------------------------------------------

    def lag(self, types: Sequence[str], group: str) -> int:
        from confluent_kafka import Consumer, KafkaException, TopicPartition

        reader = Consumer(self._config(**{"group.id": group, "enable.auto.commit": False}))
        total = 0
        try:
            for topic in types:
                metadata = reader.list_topics(topic, timeout=TIMEOUT_S)
                found = metadata.topics.get(topic)
                if found is None or found.error is not None:
                    continue
                partitions = [TopicPartition(topic, n) for n in found.partitions]
                committed = reader.committed(partitions, timeout=TIMEOUT_S)
                for position in committed:
                    low, high = reader.get_watermark_offsets(
                        TopicPartition(topic, position.partition), timeout=TIMEOUT_S
                    )
                    start = position.offset if position.offset >= 0 else low
                    total += max(high - start, 0)
        except KafkaException as exc:
            raise self._exception("lag", exc) from None
        finally:
            reader.close()
        return total

    def remember(self, key: str, value: str, *, ttl_s: int) -> bool:
        if self._store is not None:
            return bool(self._store.remember(key, value, ttl_s=ttl_s))
        now = time.monotonic()
        with self._lock:
            current = self._memory.get(key)
            if current is not None and current[1] > now:
                return False
            self._memory[key] = (value, now + ttl_s)
            return True

    def recall(self, key: str) -> str | None:
        if self._store is not None:
            value = self._store.recall(key)
            return None if value is None else str(value)
        with self._lock:
            current = self._memory.get(key)
            if current is None or current[1] <= time.monotonic():
                return None
            return current[0]

    def close(self) -> None:
        with self._lock:
            for client in self._consumers.values():
                with contextlib.suppress(Exception):  # closing is best effort
                    client.close()
            self._consumers.clear()
            self._subscribed.clear()
            if self._producer is not None:
                self._producer.flush(TIMEOUT_S)
            if self._store is not None:
                self._store.close()
