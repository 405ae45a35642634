"""The Redis Streams bus (DESIGN 3.9), with redis-py (synchronous).

- One stream per event type, key `events.<type>`; a message is one entry whose
  field `event` holds the body. Dead letters go to `events.<type>.dlq`, an entry
  with the fields raw, reason, group, attempts, event_id, type, message_id (the
  id of the dead entry in its own stream).
- Consumer groups are created at the start of the stream (`XGROUP CREATE ... 0
  MKSTREAM`): events published before the first worker started are consumed.
- `consume` reads this consumer's own pending entries first (`XREADGROUP ... 0`:
  a worker restarted under the same consumer name takes back what it had read
  and not acked), then new ones (`>`) with `BLOCK`.
- `claim_stale` takes over entries another consumer left unacked (`XAUTOCLAIM`).
- `lag` is `lag + pending` of the group (`XINFO GROUPS`).
- `remember` is `SET NX EX`, `recall` is `GET`, in the same database.

Every call has a socket and a connect timeout; a blocking read uses a second
connection pool whose socket timeout exceeds the longest block. Any Redis
error is raised as `BusUnavailable` (its text never shows the password).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .base import BusUnavailable, DeadLetter, Delivery

PREFIX = "events."
DLQ_SUFFIX = ".dlq"
FIELD = b"event"
TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 3.0
MAX_BLOCK_MS = 10_000  # longer blocks are cut to this (the blocking pool's timeout is above it)

T = TypeVar("T")


def stream(type: str) -> str:
    return f"{PREFIX}{type}"


def dlq(type: str) -> str:
    return f"{PREFIX}{type}{DLQ_SUFFIX}"


class RedisBus:
    kind = "redis"

    def __init__(self, url: str) -> None:
        from ..cache import mask

        self.url = url
        self._shown = mask(url)
        if not url:
            raise BusUnavailable("REDIS_URL is empty: set it to redis://HOST:PORT/DB")
        import redis

        try:
            self._client: Any = redis.Redis.from_url(
                url, socket_timeout=TIMEOUT_S, socket_connect_timeout=CONNECT_TIMEOUT_S
            )
            self._blocking: Any = redis.Redis.from_url(
                url,
                socket_timeout=MAX_BLOCK_MS / 1000 + TIMEOUT_S,
                socket_connect_timeout=CONNECT_TIMEOUT_S,
            )
        except ValueError as exc:
            raise BusUnavailable(f"REDIS_URL {self._shown} is not a Redis URL: {exc}") from None
        self._groups: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    # -- calls -------------------------------------------------------------------------------

    def _call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        import redis

        try:
            return function(*args, **kwargs)
        except redis.RedisError as exc:
            raise BusUnavailable(f"Redis at {self._shown}: {type(exc).__name__}: {exc}") from None

    def ping(self) -> None:
        self._call(self._client.ping)

    def publish(self, type: str, body: bytes) -> str:
        entry_id = self._call(self._client.xadd, stream(type), {FIELD: body})
        return _text(entry_id)

    # -- consuming ---------------------------------------------------------------------------

    def _ensure_groups(self, streams: Sequence[str], group: str) -> None:
        import redis

        for name in streams:
            if (name, group) in self._groups:
                continue
            try:
                self._client.xgroup_create(name, group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise BusUnavailable(f"Redis at {self._shown}: {exc}") from None
            except redis.RedisError as exc:
                raise BusUnavailable(
                    f"Redis at {self._shown}: {type(exc).__name__}: {exc}"
                ) from None
            with self._lock:
                self._groups.add((name, group))

    def _read(
        self, names: Sequence[str], group: str, consumer: str, start: str, count: int, block: int
    ) -> Any:
        """XREADGROUP from `start` ("0": own pending, ">": new; block 0: don't), creating the
        groups first, and once more when a stream was deleted meanwhile."""
        import redis

        for again in (True, False):
            self._ensure_groups(names, group)
            client = self._blocking if block else self._client
            try:
                return client.xreadgroup(
                    group, consumer, dict.fromkeys(names, start), count=count, block=block or None
                )
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc) and again:
                    with self._lock:
                        self._groups.difference_update({(n, group) for n in names})
                    continue
                raise BusUnavailable(f"Redis at {self._shown}: {exc}") from None
            except redis.RedisError as exc:
                raise BusUnavailable(
                    f"Redis at {self._shown}: {type(exc).__name__}: {exc}"
                ) from None
        return []

    def consume(
        self, types: Sequence[str], group: str, consumer: str, *, block_ms: int, count: int = 10
    ) -> list[Delivery]:
        if not types:
            return []
        streams = [stream(t) for t in types]
        own = self._read(streams, group, consumer, "0", count, 0)
        deliveries = self._deliveries(own, group, consumer, pending=True)
        if deliveries:
            return deliveries
        block = max(1, min(int(block_ms), MAX_BLOCK_MS))
        new = self._read(streams, group, consumer, ">", count, block)
        return self._deliveries(new, group, consumer, pending=False)

    def claim_stale(
        self, types: Sequence[str], group: str, consumer: str, *, idle_ms: int, count: int = 10
    ) -> list[Delivery]:
        import redis

        claimed: list[Any] = []
        for event_type in types:
            name = stream(event_type)
            self._ensure_groups([name], group)
            try:
                answer = self._client.xautoclaim(
                    name, group, consumer, min_idle_time=int(idle_ms), start_id="0-0", count=count
                )
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc):
                    with self._lock:
                        self._groups.discard((name, group))
                    continue
                raise BusUnavailable(f"Redis at {self._shown}: {exc}") from None
            except redis.RedisError as exc:
                raise BusUnavailable(
                    f"Redis at {self._shown}: {type(exc).__name__}: {exc}"
                ) from None
            entries = answer[1] if len(answer) > 1 else []
            if entries:
                claimed.append([name.encode(), entries])
        return self._deliveries(claimed, group, consumer, pending=True)

    def _deliveries(
        self, answer: Any, group: str, consumer: str, *, pending: bool
    ) -> list[Delivery]:
        """Deliveries from an XREADGROUP-shaped answer; entries deleted meanwhile are acked."""
        deliveries: list[Delivery] = []
        for name_raw, entries in answer or []:
            name = _text(name_raw)
            event_type = name.removeprefix(PREFIX)
            gone = [entry_id for entry_id, fields in entries if not fields]
            if gone:
                self._call(self._client.xack, name, group, *gone)
            live = [(_text(entry_id), fields) for entry_id, fields in entries if fields]
            counts = self._delivery_counts(name, group, consumer, live) if pending else {}
            for entry_id, fields in live:
                deliveries.append(
                    Delivery(
                        type=event_type,
                        message_id=entry_id,
                        raw=_body(fields),
                        deliveries=counts.get(entry_id, 2 if pending else 1),
                    )
                )
        return deliveries

    def _delivery_counts(
        self, name: str, group: str, consumer: str, live: list[tuple[str, Any]]
    ) -> dict[str, int]:
        if not live:
            return {}
        rows = self._call(
            self._client.xpending_range,
            name,
            group,
            min=live[0][0],
            max=live[-1][0],
            count=len(live),
            consumername=consumer,
        )
        return {_text(row["message_id"]): int(row["times_delivered"]) for row in rows}

    def ack(self, group: str, delivery: Delivery) -> None:
        self._call(self._client.xack, stream(delivery.type), group, delivery.message_id)

    # -- dead letters ------------------------------------------------------------------------

    def dead_letter(
        self, delivery: Delivery, *, group: str, reason: str, attempts: int, event_id: str | None
    ) -> None:
        fields = {
            b"raw": delivery.raw,
            b"reason": reason.encode(),
            b"group": group.encode(),
            b"attempts": str(attempts).encode(),
            b"event_id": (event_id or "").encode(),
            b"type": delivery.type.encode(),
            b"message_id": delivery.message_id.encode(),
        }
        self._call(self._client.xadd, dlq(delivery.type), fields)

    def dead_letters(self, type: str, *, limit: int = 100) -> list[DeadLetter]:
        rows = self._call(self._client.xrange, dlq(type), "-", "+", count=limit) or []
        letters = []
        for _, fields in rows:
            event_id = _text(fields.get(b"event_id", b""))
            letters.append(
                DeadLetter(
                    type=_text(fields.get(b"type", type.encode())),
                    message_id=_text(fields.get(b"message_id", b"")),
                    group=_text(fields.get(b"group", b"")),
                    reason=_text(fields.get(b"reason", b"")),
                    attempts=int(fields.get(b"attempts", b"0") or 0),
                    raw=fields.get(b"raw", b""),
                    event_id=event_id or None,
                )
            )
        return letters

    # -- lag, idempotency --------------------------------------------------------------------

    def lag(self, types: Sequence[str], group: str) -> int:
        import redis

        total = 0
        for event_type in types:
            name = stream(event_type)
            try:
                groups = self._client.xinfo_groups(name)
            except redis.ResponseError:  # no such stream: nothing to read
                continue
            except redis.RedisError as exc:
                raise BusUnavailable(
                    f"Redis at {self._shown}: {type(exc).__name__}: {exc}"
                ) from None
            info = next((g for g in groups if _text(g.get("name", b"")) == group), None)
            if info is None:  # the group does not exist yet: everything is still to read
                total += int(self._call(self._client.xlen, name))
                continue
            pending = int(info.get("pending") or 0)
            lag = info.get("lag")
            if lag is None:  # Redis cannot tell (entries were deleted): count them
                last = _text(info.get("last-delivered-id", b"0-0"))
                lag = len(self._call(self._client.xrange, name, f"({last}", "+") or [])
            total += int(lag) + pending
        return total

    def remember(self, key: str, value: str, *, ttl_s: int) -> bool:
        return bool(self._call(self._client.set, key, value.encode(), nx=True, ex=int(ttl_s)))

    def recall(self, key: str) -> str | None:
        value = self._call(self._client.get, key)
        return None if value is None else _text(value)

    def close(self) -> None:
        for client in (self._client, self._blocking):
            with contextlib.suppress(Exception):  # closing is best effort
                client.close()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _body(fields: dict[Any, Any]) -> bytes:
    """The message body: the `event` field; an entry written by something else is
    returned as the JSON of its fields, so it fails to decode and is dead-lettered."""
    body = fields.get(FIELD)
    if body is None:
        body = fields.get(FIELD.decode())
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps({_text(k): _text(v) for k, v in fields.items()}).encode()
