"""The event envelope (DESIGN 3.9): one JSON object a message.

    {"event_id", "type", "run_id", "parent_id", "source", "occurred_at",
     "payload": {...}, "traceparent"}

`event_id` of a produced event is derived from the consumer group and the
consumed event's id, so a redelivered event that is handled again produces
the same id, and every reader can drop the duplicate.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any

FIELDS = (
    "event_id",
    "type",
    "run_id",
    "parent_id",
    "source",
    "occurred_at",
    "payload",
    "traceparent",
)
TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
MAX_BYTES = 16 * 1024 * 1024
_NAMESPACE = uuid.UUID("6f1d7c52-2b1c-4f3e-9a7e-6d2a0b8c1e55")

Envelope = dict[str, Any]


class MalformedEvent(ValueError):
    """A message that is not an envelope: dead-lettered with this reason."""


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new(
    type: str,
    payload: dict[str, Any],
    *,
    run_id: str | None = None,
    parent_id: str | None = None,
    source: str = "",
    traceparent: str = "",
    event_id: str | None = None,
) -> Envelope:
    if not TYPE.match(type):
        raise MalformedEvent(f"bad event type {type!r}")
    event_id = event_id or str(uuid.uuid4())
    return {
        "event_id": event_id,
        "type": type,
        "run_id": run_id or event_id,
        "parent_id": parent_id,
        "source": source,
        "occurred_at": now(),
        "payload": payload,
        "traceparent": traceparent,
    }


def child_id(group: str, parent_event_id: str) -> str:
    """The id of the event that `group` produces from `parent_event_id`: deterministic."""
    return str(uuid.uuid5(_NAMESPACE, f"{group}\0{parent_event_id}"))


def encode(envelope: Envelope) -> bytes:
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def decode(raw: bytes | str) -> Envelope:
    """Parse and check one message; `MalformedEvent` says what is wrong."""
    if isinstance(raw, str):
        raw = raw.encode()
    if len(raw) > MAX_BYTES:
        raise MalformedEvent(f"message larger than {MAX_BYTES} bytes")
    try:
        document = json.loads(raw, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise MalformedEvent(f"not JSON: {exc}") from None
    except ValueError as exc:
        raise MalformedEvent(str(exc)) from None
    if not isinstance(document, dict):
        raise MalformedEvent("not a JSON object")
    for key in ("event_id", "type"):
        if not isinstance(document.get(key), str) or not document[key]:
            raise MalformedEvent(f"missing or empty {key!r}")
    if not TYPE.match(document["type"]):
        raise MalformedEvent(f"bad event type {document['type']!r}")
    payload = document.get("payload", {})
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise MalformedEvent("'payload' is not a JSON object")
    document["payload"] = payload
    document.setdefault("run_id", document["event_id"])
    for key in ("parent_id", "source", "occurred_at", "traceparent"):
        document.setdefault(key, None if key == "parent_id" else "")
    return document


def header(envelope: Envelope) -> Envelope:
    """The envelope without its payload: what run listings show."""
    return {k: v for k, v in envelope.items() if k != "payload"}


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
