"""Real services for the runtime tests: Redis (scripts/test-services starts
redis-server on 127.0.0.1), PostgreSQL (the embedded server) and Docker.

Every test gets a Redis logical database of its own, flushed first, so tests
that use the same event types never see each other's streams.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.conftest import require_service
from tests.integration.data.conftest import database_url, pg_server  # noqa: F401  (fixtures)

REDIS_URL = os.environ.get("MIGRATE_TEST_REDIS_URL", "redis://127.0.0.1:6390/0")
SERVICES = 'run `eval "$(bash scripts/test-services)"` first'


@pytest.fixture(scope="session")
def redis_server() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=3, socket_connect_timeout=3)
    try:
        client.ping()
        databases = int(client.config_get("databases")["databases"])
    except redis.RedisError as exc:
        require_service("Redis", f"nothing answers at {REDIS_URL}: {exc}; {SERVICES}")
    finally:
        client.close()
    if databases < 64:
        require_service("Redis", f"{REDIS_URL} has {databases} databases; {SERVICES}")
    return REDIS_URL


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """A flushed Redis logical database of this test's own (1..databases-1)."""
    import redis

    base = redis.Redis.from_url(redis_server, socket_timeout=3)
    databases = int(base.config_get("databases")["databases"])
    index = 1 + int(base.incr("migrate-tests:next-db")) % (databases - 1)
    base.close()
    url = redis_server.rsplit("/", 1)[0] + f"/{index}"
    client = redis.Redis.from_url(url, socket_timeout=3)
    client.flushdb()
    client.close()
    yield url
    client = redis.Redis.from_url(url, socket_timeout=3)
    client.flushdb()
    client.close()
