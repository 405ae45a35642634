"""What wraps a plugin's handler in every role (DESIGN 5, as dramatiq's middleware):
the result cache and the invocation metrics. Retries, the bus and tracing of
events are the worker's (worker.py); the plugin's code knows none of this.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from . import metrics, settings
from .cache import MISS, Cache, key, mask
from .log import log

Handler = Callable[[dict[str, Any]], Any]
_MARK = "__migrate_concerns__"


def wrap(handler: Handler, *, plugin: str, version: str) -> Handler:
    """`handler` with the cache (when MIGRATE_CACHE_TTL_S > 0) and the invocation metrics.

    A cached result counts `migrate_cache_hits_total` and does not call the plugin;
    otherwise `migrate_cache_misses_total`, then the call is timed and counted in
    `migrate_invocations_total{outcome=ok|error}` and `migrate_invocation_seconds`.
    Exceptions of the plugin go to the caller unchanged. A handler wrapped already
    is returned as it is (the host wraps, and the worker wraps what it is given).
    """
    if wrapped_already(handler):
        return handler
    cache = _cache(plugin)

    def wrapped(payload: dict[str, Any]) -> Any:
        cache_key: str | None = None
        if cache is not None:
            try:
                cache_key = key(plugin, version, payload)
            except (TypeError, ValueError):
                cache_key = None  # a payload that is not JSON has no key: always a miss
            cached = cache.get(cache_key) if cache_key is not None else MISS
            if cached is not MISS:
                metrics.cache_hit(plugin)
                return cached
            metrics.cache_miss(plugin)
        started = time.perf_counter()
        try:
            result = handler(payload)
        except Exception:
            metrics.invocation(plugin, "error", time.perf_counter() - started)
            raise
        metrics.invocation(plugin, "ok", time.perf_counter() - started)
        if cache is not None and cache_key is not None:
            cache.put(cache_key, result)
        return result

    wrapped.__name__ = getattr(handler, "__name__", "handler")
    wrapped.__doc__ = handler.__doc__
    wrapped.__dict__[_MARK] = True
    return wrapped


def wrapped_already(handler: Handler) -> bool:
    return bool(getattr(handler, _MARK, False))


def _cache(plugin: str) -> Cache | None:
    ttl = settings.get_int("MIGRATE_CACHE_TTL_S")
    if ttl <= 0:
        return None
    url = settings.get("MIGRATE_CACHE_URL") or settings.get("REDIS_URL")
    if not url:
        log("warning", "MIGRATE_CACHE_TTL_S is set but neither MIGRATE_CACHE_URL nor REDIS_URL")
        return Cache("", ttl)  # every lookup fails: counted as misses, never fails the call
    log("info", "result cache on", cache=mask(url), ttl_s=ttl, plugin_name=plugin)
    return Cache(url, ttl)
