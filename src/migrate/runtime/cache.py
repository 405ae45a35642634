"""The result cache (DESIGN 3.9, phase 4 "advanced caching"): plugin results in Redis.

Key: `migrate:cache:<plugin>:<version>:<sha256 of the canonical JSON payload>`
(sort_keys, compact separators, ensure_ascii=False), so a new plugin version
never reads an old version's results. Values are the result as JSON; a result
that is not JSON is not cached. The cache is best effort: a Redis error is a
miss, logged, and the cache is not asked again for a few seconds, so a Redis
that is down costs the plugin no more than one timeout now and then.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any

from .log import log

MISS = object()
PAUSE_S = 5.0  # after an error, the cache is skipped for this long


def key(plugin: str, version: str, payload: Any) -> str:
    """The cache key of `payload`; TypeError/ValueError when the payload is not JSON."""
    canonical = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"migrate:cache:{plugin}:{version}:{digest}"


def mask(url: str) -> str:
    """`url` without its password (logs and messages never show credentials)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    userinfo, _, host = rest.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user + ':' if user else ''}***@{host}"


class Cache:
    """Get and put JSON results in the Redis at `url`, for `ttl_s` seconds."""

    def __init__(self, url: str, ttl_s: int) -> None:
        self.url = url
        self.ttl_s = ttl_s
        self._client: Any = None
        self._lock = threading.Lock()
        self._paused_until = 0.0

    def get(self, cache_key: str) -> Any:
        """The cached result, or `MISS` (also on any error)."""
        client = self._redis()
        if client is None:
            return MISS
        try:
            raw = client.get(cache_key)
        except Exception as exc:
            self._failed("read", exc)
            return MISS
        if raw is None:
            return MISS
        try:
            return json.loads(raw)
        except ValueError:
            return MISS

    def put(self, cache_key: str, result: Any) -> None:
        try:
            value = json.dumps(result, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError):
            return  # not JSON: not cached
        client = self._redis()
        if client is None:
            return
        try:
            client.set(cache_key, value.encode(), ex=self.ttl_s)
        except Exception as exc:
            self._failed("write", exc)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _redis(self) -> Any:
        if time.monotonic() < self._paused_until:
            return None
        with self._lock:
            if self._client is None:
                try:
                    import redis

                    self._client = redis.Redis.from_url(
                        self.url, socket_timeout=1.0, socket_connect_timeout=1.0
                    )
                except Exception as exc:
                    self._failed("connect", exc)
                    return None
            return self._client

    def _failed(self, what: str, exc: Exception) -> None:
        self._paused_until = time.monotonic() + PAUSE_S
        log(
            "warning",
            f"cache {what} failed: counted as a miss",
            cache=mask(self.url),
            error=f"{type(exc).__name__}: {exc}",
        )
