"""Tracing (DESIGN 3.9): one span per invoke and per handled event, W3C `traceparent`
carried in the event envelope, so a run is one trace across plugins.

With `OTEL_EXPORTER_OTLP_ENDPOINT` set, `setup()` builds an OpenTelemetry SDK
`TracerProvider` with a `BatchSpanProcessor` and the OTLP/HTTP exporter, which
posts to `<endpoint>/v1/traces` (the generic endpoint variable names the
collector, not the signal path; the exporter only appends `/v1/traces` itself
when it reads the variable on its own, so it is appended here explicitly).
The provider is this module's own, not the global one: `shutdown()` flushes it
and a later `setup()` may build another (tests do).

Without an endpoint nothing of the SDK is imported, and `span()` still yields
a valid traceparent: the parent's trace id with a new span id, or a new trace.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import settings

TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_lock = threading.Lock()
_state: dict[str, Any] = {}


def setup() -> None:
    """Build the exporter when OTEL_EXPORTER_OTLP_ENDPOINT is set; idempotent."""
    endpoint = settings.get("OTEL_EXPORTER_OTLP_ENDPOINT").strip()
    with _lock:
        if _state or not endpoint:
            return
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        attributes: dict[str, str] = {}
        if not settings.get("OTEL_SERVICE_NAME"):  # else the SDK reads it itself
            plugin = settings.get("MIGRATE_PLUGIN")
            attributes["service.name"] = plugin or f"migrate-{settings.get('MIGRATE_ROLE')}"
        provider = TracerProvider(resource=Resource.create(attributes))
        exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces", timeout=5)
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
        _state["provider"] = provider
        _state["tracer"] = provider.get_tracer("migrate_runtime")
        _state["propagator"] = TraceContextTextMapPropagator()


def enabled() -> bool:
    return bool(_state)


@contextmanager
def span(
    name: str, *, traceparent: str | None = None, attributes: dict[str, str] | None = None
) -> Iterator[str]:
    """A span named `name`, child of `traceparent` when that is a valid W3C traceparent;
    yields the traceparent of the new span (to put in the envelopes it causes)."""
    tracer = _state.get("tracer")
    if tracer is None:
        yield child(traceparent)
        return
    from opentelemetry.context import Context

    propagator = _state["propagator"]
    parent = propagator.extract({"traceparent": traceparent}) if valid(traceparent) else Context()
    with tracer.start_as_current_span(name, context=parent, attributes=attributes or {}):
        carrier: dict[str, str] = {}
        propagator.inject(carrier)
        yield carrier.get("traceparent", "")


def failed(message: str) -> None:
    """Mark the current span as failed (an event dead-lettered); nothing without the SDK."""
    if not _state:
        return
    from opentelemetry import trace

    current = trace.get_current_span()
    current.set_status(trace.Status(trace.StatusCode.ERROR, message))
    current.add_event("dead-lettered", {"error": message})


def shutdown() -> None:
    """Flush the spans not yet exported and drop the provider (idempotent)."""
    with _lock:
        provider = _state.get("provider")
        _state.clear()
    if provider is not None:
        provider.force_flush(5000)
        provider.shutdown()


def valid(traceparent: str | None) -> bool:
    match = TRACEPARENT.match(traceparent or "")
    if match is None:
        return False
    version, trace_id, span_id, _ = match.groups()
    return version != "ff" and trace_id != "0" * 32 and span_id != "0" * 16


def child(traceparent: str | None) -> str:
    """A traceparent for a new span: same trace as `traceparent` when valid, else a new one."""
    span_id = _nonzero_hex(8)
    match = TRACEPARENT.match(traceparent or "")
    if match is not None and valid(traceparent):
        _, trace_id, _, flags = match.groups()
        return f"00-{trace_id}-{span_id}-{flags}"
    return f"00-{_nonzero_hex(16)}-{span_id}-01"


def _nonzero_hex(nbytes: int) -> str:
    while True:
        value = secrets.token_hex(nbytes)
        if value.strip("0"):
            return value
