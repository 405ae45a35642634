"""One contract for every bus (DESIGN 3.9): the same tests against Redis Streams
(the real redis-server of scripts/test-services) and against Kafka.

Kafka runs only when MIGRATE_TEST_KAFKA names a broker (HOST:PORT): no Kafka
broker can be installed on these machines, so here the Kafka half is skipped.
Event types carry a random suffix, so a shared broker keeps tests apart.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from migrate.runtime import envelope
from migrate.runtime.bus import Bus, BusUnavailable, Delivery

DEADLINE_S = 30.0
NO_KAFKA = (
    "no Kafka broker: none can be installed on these machines; "
    "set MIGRATE_TEST_KAFKA=HOST:PORT to run the bus contract against one"
)


@pytest.fixture(params=["redis", "kafka"])
def make_bus(request: pytest.FixtureRequest) -> Iterator[Callable[[], Bus]]:
    """A factory of buses of one kind on the same server (a second instance is a restart)."""
    made: list[Bus] = []
    if request.param == "redis":
        from migrate.runtime.bus.redis import RedisBus

        url = request.getfixturevalue("redis_url")

        def factory() -> Bus:
            made.append(RedisBus(url))
            return made[-1]
    else:
        broker = os.environ.get("MIGRATE_TEST_KAFKA", "")
        if not broker:
            pytest.skip(NO_KAFKA)
        from migrate.runtime.bus.kafka import KafkaBus

        def factory() -> Bus:
            made.append(KafkaBus(broker, ""))
            return made[-1]

    yield factory
    for bus in made:
        bus.close()


@pytest.fixture
def bus(make_bus: Callable[[], Bus]) -> Bus:
    return make_bus()


@pytest.fixture
def type_() -> str:
    return f"contract.t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def group() -> str:
    return f"g{uuid.uuid4().hex[:10]}"


def body(n: int) -> bytes:
    return envelope.encode(
        envelope.new("contract.any", {"n": n}, event_id=f"e{n}") | {"occurred_at": ""}
    )


def consume_until(
    bus: Bus, types: list[str], group: str, consumer: str, want: int
) -> list[Delivery]:
    """Consume until `want` deliveries arrived (Kafka needs a moment to join the group)."""
    got: list[Delivery] = []
    deadline = time.monotonic() + DEADLINE_S
    while len(got) < want and time.monotonic() < deadline:
        got += bus.consume(types, group, consumer, block_ms=200, count=10)
    assert len(got) >= want, f"got {len(got)} deliveries, wanted {want}"
    return got


def test_ping_answers(bus: Bus) -> None:
    bus.ping()
    assert bus.kind in ("redis", "kafka")


def test_published_messages_reach_the_group_in_order(bus: Bus, type_: str, group: str) -> None:
    ids = [bus.publish(type_, body(n)) for n in range(3)]  # before the group exists
    got = consume_until(bus, [type_], group, "c1", 3)
    assert [d.raw for d in got] == [body(n) for n in range(3)]
    assert [d.message_id for d in got] == ids
    assert {d.type for d in got} == {type_}
    assert all(d.deliveries == 1 for d in got)


def test_every_group_gets_every_message(bus: Bus, type_: str, group: str) -> None:
    bus.publish(type_, body(1))
    first = consume_until(bus, [type_], group, "c1", 1)
    second = consume_until(bus, [type_], group + "-other", "c1", 1)
    assert first[0].raw == second[0].raw == body(1)


def test_one_consumer_reads_several_types(bus: Bus, type_: str, group: str) -> None:
    bus.publish(type_ + ".a", body(1))
    bus.publish(type_ + ".b", body(2))
    got = consume_until(bus, [type_ + ".a", type_ + ".b"], group, "c1", 2)
    assert sorted((d.type, d.raw) for d in got) == [
        (type_ + ".a", body(1)),
        (type_ + ".b", body(2)),
    ]


def test_unacked_messages_come_back_after_a_restart_acked_ones_do_not(
    make_bus: Callable[[], Bus], type_: str, group: str
) -> None:
    first = make_bus()
    for n in range(2):
        first.publish(type_, body(n))
    got = consume_until(first, [type_], group, "c1", 2)
    first.ack(group, got[0])
    first.close()  # died with the second one unacked

    second = make_bus()  # restarted under the same consumer name
    again = consume_until(second, [type_], group, "c1", 1)
    assert [d.raw for d in again] == [body(1)]
    assert again[0].message_id == got[1].message_id
    second.ack(group, again[0])
    assert second.consume([type_], group, "c1", block_ms=300) == []


def test_a_consumer_reads_its_own_unacked_messages_first(bus: Bus, type_: str, group: str) -> None:
    bus.publish(type_, body(1))
    [first] = consume_until(bus, [type_], group, "c1", 1)
    bus.publish(type_, body(2))
    again = consume_until(bus, [type_], group, "c1", 1)  # not acked: handed out again, first
    assert again[0].raw == first.raw == body(1)
    assert again[0].message_id == first.message_id
    bus.ack(group, again[0])
    rest = consume_until(bus, [type_], group, "c1", 1)
    assert [d.raw for d in rest] == [body(2)]


def test_claim_stale_takes_over_a_dead_consumers_messages(bus: Bus, type_: str, group: str) -> None:
    bus.publish(type_, body(1))
    [taken] = consume_until(bus, [type_], group, "dead", 1)
    if bus.kind == "kafka":  # rebalancing does this on Kafka
        assert bus.claim_stale([type_], group, "alive", idle_ms=0) == []
        return
    assert bus.claim_stale([type_], group, "alive", idle_ms=60_000) == []  # not idle long enough
    claimed: list[Delivery] = []
    deadline = time.monotonic() + DEADLINE_S
    while not claimed and time.monotonic() < deadline:
        claimed = bus.claim_stale([type_], group, "alive", idle_ms=50)
    assert [(d.message_id, d.raw) for d in claimed] == [(taken.message_id, body(1))]
    assert claimed[0].deliveries >= 2
    bus.ack(group, claimed[0])
    assert bus.lag([type_], group) == 0


def test_lag_counts_unread_and_unacked(bus: Bus, type_: str, group: str) -> None:
    assert bus.lag([type_], group) == 0
    for n in range(3):
        bus.publish(type_, body(n))
    assert bus.lag([type_], group) == 3
    got = consume_until(bus, [type_], group, "c1", 3)
    assert bus.lag([type_], group) == 3  # read is not done
    bus.ack(group, got[0])
    bus.ack(group, got[1])
    assert bus.lag([type_], group) == 1
    bus.ack(group, got[2])
    assert bus.lag([type_], group) == 0


def test_dead_letters_keep_reason_attempts_and_body(bus: Bus, type_: str, group: str) -> None:
    bus.publish(type_, b"not an envelope")
    bus.publish(type_, body(2))
    got = consume_until(bus, [type_], group, "c1", 2)
    bus.dead_letter(got[0], group=group, reason="malformed: not JSON", attempts=0, event_id=None)
    bus.dead_letter(got[1], group=group, reason="ValueError: no", attempts=5, event_id="e2")
    letters = bus.dead_letters(type_)
    assert [(x.reason, x.attempts, x.event_id) for x in letters] == [
        ("malformed: not JSON", 0, None),
        ("ValueError: no", 5, "e2"),
    ]
    assert [x.raw for x in letters] == [b"not an envelope", body(2)]
    assert {(x.type, x.group) for x in letters} == {(type_, group)}
    assert [x.message_id for x in letters] == [d.message_id for d in got]
    assert bus.dead_letters(type_, limit=1) == letters[:1]
    assert bus.dead_letters(type_ + ".none") == []


def test_remember_stores_once_and_recall_reads(bus: Bus) -> None:
    key = f"migrate:test:{uuid.uuid4().hex}"
    assert bus.recall(key) is None
    assert bus.remember(key, "first", ttl_s=60) is True
    assert bus.remember(key, "second", ttl_s=60) is False
    assert bus.recall(key) == "first"


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: _redis("redis://:s3cret@127.0.0.1:1/0"), id="redis"),
        pytest.param(lambda: _kafka("127.0.0.1:1"), id="kafka"),
    ],
)
def test_an_unreachable_server_raises_bus_unavailable(
    make: Callable[[], Bus], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Needs no server at all: nothing answers on port 1. Kafka's calls each wait for their
    timeout: 1 s here (librdkafka's least connection set-up timeout), not the default 5 s."""
    from migrate.runtime.bus import kafka

    monkeypatch.setattr(kafka, "TIMEOUT_S", 1.0)
    bus = make()
    try:
        with pytest.raises(BusUnavailable) as caught:
            bus.ping()
        assert "127.0.0.1:1" in str(caught.value)
        assert "s3cret" not in str(caught.value)
        with pytest.raises(BusUnavailable):
            bus.publish("contract.x", body(1))
        with pytest.raises(BusUnavailable):
            for _ in range(3):  # Kafka learns that no broker answers on the first poll
                bus.consume(["contract.x"], "g", "c", block_ms=200)
    finally:
        bus.close()


def test_an_empty_url_says_what_to_set() -> None:
    with pytest.raises(BusUnavailable, match="REDIS_URL"):
        _redis("")
    with pytest.raises(BusUnavailable, match="KAFKA_BOOTSTRAP_SERVERS"):
        _kafka("")


def _redis(url: str) -> Any:
    from migrate.runtime.bus.redis import RedisBus

    return RedisBus(url)


def _kafka(bootstrap: str) -> Any:
    from migrate.runtime.bus.kafka import KafkaBus

    return KafkaBus(bootstrap, "")
