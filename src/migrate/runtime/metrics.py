"""Prometheus metrics of every role (DESIGN 3.9), served on `GET /metrics`.

prometheus_client is imported on first use, not at start-up of the module, so
`python -m migrate_runtime --check` stays fast. One registry per process.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_metrics: dict[str, Any] = {}

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _registry() -> dict[str, Any]:
    with _lock:
        if _metrics:
            return _metrics
        from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

        disable_created_metrics()  # type: ignore[no-untyped-call]  # no `*_created` series: they double the exposition
        registry = CollectorRegistry(auto_describe=True)
        _metrics["registry"] = registry
        _metrics["invocations"] = Counter(
            "migrate_invocations",
            "Calls of the plugin's entrypoint, by outcome (ok, error).",
            ["plugin", "outcome"],
            registry=registry,
        )
        _metrics["seconds"] = Histogram(
            "migrate_invocation_seconds",
            "Time the plugin's entrypoint took.",
            ["plugin"],
            buckets=BUCKETS,
            registry=registry,
        )
        for key, name, text in (
            ("consumed", "migrate_events_consumed", "Events taken from the bus and handled."),
            ("produced", "migrate_events_produced", "Events published to the bus."),
            ("dead", "migrate_events_dead_lettered", "Events sent to the dead letters."),
        ):
            _metrics[key] = Counter(name, text, ["plugin", "type"], registry=registry)
        _metrics["hits"] = Counter(
            "migrate_cache_hits", "Results served from the cache.", ["plugin"], registry=registry
        )
        _metrics["misses"] = Counter(
            "migrate_cache_misses", "Results not in the cache.", ["plugin"], registry=registry
        )
        _metrics["runs"] = Counter(
            "migrate_runs",
            "Runs of the orchestrator, by status (started, done, failed).",
            ["status"],
            registry=registry,
        )
        return _metrics


def invocation(plugin: str, outcome: str, seconds: float) -> None:
    m = _registry()
    m["invocations"].labels(plugin, outcome).inc()
    m["seconds"].labels(plugin).observe(seconds)


def consumed(plugin: str, type: str) -> None:
    _registry()["consumed"].labels(plugin, type).inc()


def produced(plugin: str, type: str) -> None:
    _registry()["produced"].labels(plugin, type).inc()


def dead_lettered(plugin: str, type: str) -> None:
    _registry()["dead"].labels(plugin, type).inc()


def cache_hit(plugin: str) -> None:
    _registry()["hits"].labels(plugin).inc()


def cache_miss(plugin: str) -> None:
    _registry()["misses"].labels(plugin).inc()


def run_status(status: str) -> None:
    _registry()["runs"].labels(status).inc()


def exposition() -> tuple[bytes, str]:
    """The body and Content-Type of `GET /metrics` (Prometheus text format 0.0.4)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(_registry()["registry"]), CONTENT_TYPE_LATEST
