"""Every environment variable the runtime reads: the one list (DESIGN 3.9).

The manifests (templates/k8s) and `migrate dev up` may set only variables named
here, and a test compares the two sets: nothing is rendered that nothing reads.
Variables read by a library on our behalf (the OpenTelemetry SDK reads
`OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`) are listed too, with the
library that reads them.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class Variable:
    name: str
    roles: tuple[str, ...]  # "service", "worker", "orchestrator"; all three = every role
    default: str
    meaning: str
    read_by: str = "migrate_runtime"


ALL = ("service", "worker", "orchestrator")
PLUGIN_ROLES = ("service", "worker")

VARIABLES: tuple[Variable, ...] = (
    Variable("MIGRATE_ROLE", ALL, "service", "service | worker | orchestrator"),
    Variable("HOST", ALL, "0.0.0.0", "address the HTTP server listens on"),
    Variable("PORT", ALL, "8080", "port of /healthz, /readyz, /metrics (0 picks a free one)"),
    Variable("MIGRATE_PLUGIN", PLUGIN_ROLES, "", "the plugin's name (logs, metrics labels)"),
    Variable("MIGRATE_PLUGIN_VERSION", PLUGIN_ROLES, "0", "the plugin's version (cache key)"),
    Variable("MIGRATE_ENTRYPOINT", PLUGIN_ROLES, "plugin:handle", "module:function to call"),
    Variable("MIGRATE_PLUGIN_DIR", PLUGIN_ROLES, "", "where the plugin's modules are (cwd)"),
    Variable("MIGRATE_BUS", ALL, "", "redis | kafka; empty: no bus (a service needs none)"),
    Variable("REDIS_URL", ALL, "", "the Redis of the bus (MIGRATE_BUS=redis) and the cache"),
    Variable("KAFKA_BOOTSTRAP_SERVERS", ALL, "", "the Kafka brokers (MIGRATE_BUS=kafka)"),
    Variable("MIGRATE_CONSUMES", ("worker",), "", "event types to consume, comma-separated"),
    Variable("MIGRATE_PRODUCES", ("worker",), "", "event types it may produce"),
    Variable("MIGRATE_GROUP", ("worker",), "<plugin>-worker", "consumer group"),
    Variable("MIGRATE_CONSUMER", ("worker", "orchestrator"), "<hostname>", "consumer name"),
    Variable("MIGRATE_MAX_ATTEMPTS", ("worker",), "5", "calls before an event is dead-lettered"),
    Variable("MIGRATE_RETRY_BASE_S", ("worker",), "0.2", "first backoff; doubles each attempt"),
    Variable("MIGRATE_CLAIM_IDLE_MS", ALL, "30000", "claim a dead consumer's pending events"),
    Variable("MIGRATE_CACHE_TTL_S", PLUGIN_ROLES, "0", "cache results in Redis for N s; 0: off"),
    Variable("MIGRATE_CACHE_URL", PLUGIN_ROLES, "", "Redis of the cache (default REDIS_URL)"),
    Variable("MIGRATE_DEBUG_ERRORS", ALL, "", "1: return plugin error details to callers"),
    Variable("DATABASE_URL", ("orchestrator",), "", "PostgreSQL that keeps the runs"),
    Variable("DATABASE_SCHEMA", ("orchestrator",), "legacy", "schema of the run tables"),
    Variable("MIGRATE_EVENT_GRAPH", ("orchestrator",), "{}", "JSON {plugin: {consumes, produces}}"),
    Variable("OTEL_EXPORTER_OTLP_ENDPOINT", ALL, "", "OTLP/HTTP collector; empty: no export"),
    Variable("OTEL_SERVICE_NAME", ALL, "", "service.name of spans", "opentelemetry-sdk"),
    Variable("OTEL_RESOURCE_ATTRIBUTES", ALL, "", "resource attributes", "opentelemetry-sdk"),
)

NAMES: frozenset[str] = frozenset(v.name for v in VARIABLES)
_BY_NAME = {v.name: v for v in VARIABLES}


def get(name: str) -> str:
    """The variable's value, or its default; only names listed above."""
    variable = _BY_NAME[name]  # KeyError: add the variable to VARIABLES first
    value = os.environ.get(name, "")
    if value:
        return value
    if name == "MIGRATE_GROUP":
        return f"{get('MIGRATE_PLUGIN')}-worker"
    if name == "MIGRATE_CONSUMER":
        return socket.gethostname()
    if name == "MIGRATE_PLUGIN_DIR":
        return os.getcwd()
    return variable.default


def get_int(name: str) -> int:
    return int(get(name))


def get_float(name: str) -> float:
    return float(get(name))


def get_list(name: str) -> list[str]:
    return [part.strip() for part in get(name).split(",") if part.strip()]
