"""The event envelope (DESIGN 3.9): what a worker accepts, and what it dead-letters."""

from __future__ import annotations

import json

import pytest

from migrate.runtime import envelope
from migrate.runtime.envelope import MalformedEvent


def good(**changes: object) -> dict[str, object]:
    document: dict[str, object] = {
        "event_id": "e1",
        "type": "task.created",
        "run_id": "r1",
        "parent_id": None,
        "source": "cli",
        "occurred_at": "2024-01-01T00:00:00.000Z",
        "payload": {"title": "x"},
        "traceparent": "",
    }
    document.update(changes)
    return document


def raw(document: object) -> bytes:
    return json.dumps(document).encode()


def test_round_trip_keeps_every_field() -> None:
    event = envelope.new("plan.ready", {"steps": ["a", "ü"]}, run_id="r", parent_id="p")
    decoded = envelope.decode(envelope.encode(event))
    assert decoded == event
    assert set(decoded) == set(envelope.FIELDS)
    assert envelope.decode(envelope.encode(event).decode()) == event  # str is accepted too


def test_defaults_fill_missing_optional_fields() -> None:
    decoded = envelope.decode(raw({"event_id": "e1", "type": "a"}))
    assert decoded["run_id"] == "e1"
    assert decoded["payload"] == {}
    assert decoded["parent_id"] is None
    assert decoded["traceparent"] == ""
    assert envelope.decode(raw(good(payload=None)))["payload"] == {}


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"not json", "not JSON"),
        (b"", "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        (b'{"event_id": "e1", "type": "a", "payload": {"x": NaN}}', "NaN is not JSON"),
        (b'{"event_id": "e1", "type": "a", "payload": {"x": -Infinity}}', "Infinity"),
        (b"[1, 2]", "not a JSON object"),
        (b'"text"', "not a JSON object"),
        (b"null", "not a JSON object"),
        (raw(good(event_id=None)), "'event_id'"),
        (raw(good(event_id="")), "'event_id'"),
        (raw(good(event_id=12)), "'event_id'"),
        (raw({"event_id": "e1"}), "'type'"),
        (raw(good(type="has space")), "bad event type"),
        (raw(good(type="../etc")), "bad event type"),
        (raw(good(payload=[1, 2])), "'payload' is not a JSON object"),
        (raw(good(payload="text")), "'payload' is not a JSON object"),
    ],
)
def test_malformed_messages_say_why(message: bytes, reason: str) -> None:
    with pytest.raises(MalformedEvent, match=reason.replace("(", r"\(")):
        envelope.decode(message)


@pytest.mark.parametrize(
    "message",
    [
        b"[" * 200_000 + b"]" * 200_000,
        b'{"event_id": "e1", "type": "a", "payload": '
        + b'{"a": ' * 200_000
        + b"1"
        + b"}" * 200_001,
    ],
    ids=["deep-array", "deep-payload"],
)
def test_deep_nesting_is_malformed_not_a_recursion_error(message: bytes) -> None:
    with pytest.raises(MalformedEvent):
        envelope.decode(message)


def test_oversized_message_is_malformed() -> None:
    body = raw(good(payload={"blob": "x" * envelope.MAX_BYTES}))
    with pytest.raises(MalformedEvent, match="larger than"):
        envelope.decode(body)


def test_encode_refuses_what_decode_would_refuse() -> None:
    with pytest.raises(ValueError):
        envelope.encode(envelope.new("a", {"x": float("nan")}))
    with pytest.raises(TypeError):
        envelope.encode(envelope.new("a", {"x": object()}))


def test_new_refuses_a_bad_type() -> None:
    with pytest.raises(MalformedEvent, match="bad event type"):
        envelope.new("no spaces allowed", {})


def test_child_id_is_deterministic_per_group_and_parent() -> None:
    assert envelope.child_id("g", "e1") == envelope.child_id("g", "e1")
    assert envelope.child_id("g", "e1") != envelope.child_id("h", "e1")
    assert envelope.child_id("g", "e1") != envelope.child_id("g", "e2")


def test_header_drops_only_the_payload() -> None:
    event = envelope.new("a", {"secret-ish": 1})
    header = envelope.header(event)
    assert "payload" not in header
    assert set(header) == set(envelope.FIELDS) - {"payload"}
