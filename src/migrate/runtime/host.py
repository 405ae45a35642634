"""The HTTP host of every role (DESIGN 3.7, 3.9): `MIGRATE_ROLE` picks what runs.

Every role serves `GET /healthz` (the process is alive), `GET /readyz` (200
`{"ready": true}`, or 503 `{"ready": false, "reasons": [...]}`) and `GET /metrics`
(Prometheus text format). Beside them:

- service (the default): `POST /invoke` calls the plugin with the JSON body and
  answers with its result as JSON.
- worker: the plugin consumes its event types from the bus (worker.py); the
  HTTP server runs in a thread, the worker loop in the main thread.
- orchestrator: `POST /runs`, `GET /runs/ID`, `GET /runs/ID/events`
  (orchestrator.py), its consumer of settled notices in the main thread.

SIGTERM or SIGINT stops a role cleanly: the role's loop drains (the worker
finishes and acks what is in flight), requests in flight finish, idle
keep-alive connections are dropped, the process logs "stopped" and exits 0.
Logs are one JSON object a line on stdout (log.py).

Only the standard library is imported here at start-up: `python -m
migrate_runtime --check`, the image's HEALTHCHECK, runs every few seconds.
"""

from __future__ import annotations

import http.client
import importlib
import json
import re
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import settings
from .log import log

if TYPE_CHECKING:
    from .bus.base import Bus

ROLES = ("service", "worker", "orchestrator")
MAX_BODY = 16 * 1024 * 1024  # bytes; a larger /invoke body is refused with 413
CONNECTION_TIMEOUT_S = 30.0  # an idle or stalled connection is dropped after this long
DRAIN_S = 25.0  # at most this long for requests in flight at shutdown (docker stop: 10 s)
QUIET_PATHS = ("/healthz", "/readyz", "/metrics")  # probes and scrapes would drown the log

Handler = Callable[[dict[str, Any]], Any]
Check = Callable[[], str | None]  # None: ready; else the reason it is not
Main = Callable[[threading.Event], None]  # a role's loop: returns once the event is set


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, document: Any, **headers: str) -> Response:
    return Response(status, json.dumps(document).encode(), headers=dict(headers))


def error(status: int, message: str, **fields: Any) -> Response:
    return json_response(status, {"error": message, **fields})


# An endpoint answers with a Response, or writes the response itself and returns
# None (a stream). `match` holds the groups of the route's pattern.
Endpoint = Callable[["RequestHandler", "re.Match[str]"], "Response | None"]


class App:
    """What a role serves: its routes beside /healthz, /readyz, /metrics, its
    readiness checks, its main loop and what to close at the end."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.routes: list[tuple[re.Pattern[str], dict[str, Endpoint]]] = []
        self.checks: list[Check] = []
        self.main: Main = _wait
        self.closers: list[Callable[[], None]] = []
        self.route("/healthz", "GET", lambda request, match: json_response(200, {"status": "ok"}))
        self.route("/readyz", "GET", lambda request, match: self.readiness())
        self.route("/metrics", "GET", lambda request, match: _metrics())

    def route(self, pattern: str, method: str, endpoint: Endpoint) -> None:
        compiled = re.compile(pattern)
        for existing, methods in self.routes:
            if existing.pattern == pattern:
                methods[method] = endpoint
                return
        self.routes.append((compiled, {method: endpoint}))

    def resolve(self, path: str) -> tuple[dict[str, Endpoint], re.Match[str]] | None:
        for pattern, methods in self.routes:
            match = pattern.fullmatch(path)
            if match is not None:
                return methods, match
        return None

    def reasons(self) -> list[str]:
        reasons = []
        for check in self.checks:
            try:
                reason = check()
            except Exception as exc:  # a check that fails is a reason, never a 500
                reason = f"{type(exc).__name__}: {exc}"
            if reason:
                reasons.append(reason)
        return reasons

    def readiness(self) -> Response:
        reasons = self.reasons()
        if reasons:
            return json_response(503, {"ready": False, "reasons": reasons})
        return json_response(200, {"ready": True})

    def close(self) -> None:
        for closer in reversed(self.closers):
            try:
                closer()
            except Exception as exc:
                log("warning", "closing failed", error=f"{type(exc).__name__}: {exc}")


def _wait(stop: threading.Event) -> None:
    while not stop.wait(0.5):
        pass


def _metrics() -> Response:
    from . import metrics

    body, content_type = metrics.exposition()
    return Response(200, body, content_type)


class RuntimeServer(ThreadingHTTPServer):
    """A threading HTTP server whose shutdown is bounded.

    Request threads are daemons: an idle keep-alive connection never holds up
    the exit. Requests in flight are counted, and `drain()` waits for them
    (bounded); once `stopping` is set, every response closes its connection
    and streams end.
    """

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], app: App) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, RequestHandler)
        self.app = app
        self.stopping = threading.Event()
        self._in_flight = 0
        self._idle = threading.Condition()

    def begin(self) -> None:
        with self._idle:
            self._in_flight += 1

    def end(self) -> None:
        with self._idle:
            self._in_flight -= 1
            if self._in_flight <= 0:
                self._idle.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wait until no request is in flight; False when `timeout` ran out first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight <= 0, timeout=timeout)


class RequestHandler(BaseHTTPRequestHandler):
    server: RuntimeServer
    protocol_version = "HTTP/1.1"
    server_version = "migrate-runtime"
    default_request_version = "HTTP/1.0"  # answer a bad request line with a status line too
    timeout = CONNECTION_TIMEOUT_S  # socket timeout: idle keep-alive connections end
    # TCP_NODELAY: headers and body go out in two writes; with Nagle on, the second waits
    # for the client's delayed ACK, about 40 ms on every request of a kept-alive connection
    disable_nagle_algorithm = True
    _counted = False
    _started = 0.0
    _body_read = False

    # -- the request cycle -------------------------------------------------

    def parse_request(self) -> bool:
        """Called once the request line is in: from here on the request is in flight."""
        self.server.begin()
        self._counted = True
        self._started = time.monotonic()
        self._body_read = False
        return super().parse_request()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        finally:
            if self._counted:
                self._counted = False
                self.server.end()

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        path = self.path_only
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True  # the body is not read
            self.send(error(411, "send the body with a Content-Length, not chunked"))
            return
        found = self.server.app.resolve(path)
        if found is None:
            self.send(error(404, f"no such endpoint {path}"))
            return
        methods, match = found
        endpoint = methods.get(self.command)
        if endpoint is None:
            allow = ", ".join(sorted(methods))
            refusal = error(405, f"{self.command} is not allowed on {path}; use {allow}")
            refusal.headers["Allow"] = allow
            self.send(refusal)
            return
        try:
            response = endpoint(self, match)
        except (ConnectionError, TimeoutError):
            raise  # the client went away: nothing to answer
        except Exception as exc:
            log("error", "request failed", path=path, error=repr(exc), traceback=_trace())
            response = error(500, f"internal error: {type(exc).__name__}")
        if response is not None:
            self.send(response)

    # -- helpers for endpoints ----------------------------------------------

    @property
    def path_only(self) -> str:
        return urlsplit(self.path).path

    def content_length(self) -> int | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        return length if length >= 0 else None

    def read_json_object(self, limit: int, *, empty: Any = None) -> dict[str, Any] | Response:
        """The body as a JSON object, or the 4xx Response that says why not.

        A body longer than `limit` is refused (413) without being read.
        `empty` is what an empty body means (None: it is an error)."""
        length = self.content_length()
        if length is None:
            self.close_connection = True  # where the body ends is unknown: it is never read
            return error(400, "bad Content-Length: a whole number of bytes, 0 or more")
        if length > limit:
            return error(413, f"the body is larger than {limit} bytes")
        body = self.rfile.read(length) if length else b""
        self._body_read = True
        if len(body) < length:
            self.close_connection = True
            return error(400, "the body ended before Content-Length bytes")
        if not body and empty is not None:
            return dict(empty)
        try:
            document = json.loads(body, parse_constant=_refuse_constant)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return error(400, f"the body is not JSON: {exc}")
        except RecursionError:
            return error(400, "the body is not JSON this host accepts: it is nested too deeply")
        except ValueError as exc:  # NaN, Infinity
            return error(400, f"the body is not JSON: {exc}")
        if not isinstance(document, dict):
            return error(400, "the body must be a JSON object")
        return document

    def send(self, response: Response) -> None:
        self.send_head(response.status, response.content_type, response.headers, len(response.body))
        if self.command != "HEAD":
            self.wfile.write(response.body)
        self.log_request_line(response.status)

    def send_head(
        self, status: int, content_type: str, headers: dict[str, str], length: int | None
    ) -> None:
        """Status line and headers; `length` None: a stream that ends with the connection."""
        if length is None or self.server.stopping.is_set():
            self.close_connection = True
        elif not self._body_read and self.content_length() != 0:
            self.close_connection = True  # an unread body would be taken for the next request
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        for name, value in headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()

    def log_request_line(self, status: int) -> None:
        if self.path_only in QUIET_PATHS and status == 200:
            return
        log(
            "info",
            "request",
            method=self.command,
            path=self.path_only,
            status=status,
            ms=round((time.monotonic() - self._started) * 1000, 1),
        )

    def log_message(self, format: str, *args: Any) -> None:
        """Silence http.server's own stderr lines: requests are logged as JSON."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, unsupported method) as JSON too."""
        self.close_connection = True
        body = json.dumps({"error": message or http.client.responses.get(code, "error")}).encode()
        try:
            self.send_response(code, message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)
        except OSError:
            pass


def _trace() -> str:
    return traceback.format_exc()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259): send a number or null")


# -- the roles ------------------------------------------------------------------


def load_entrypoint(spec: str, plugin_dir: str) -> Handler:
    """Import `module:function` from the plugin directory."""
    module_name, _, function = spec.partition(":")
    if not module_name or not function:
        raise ValueError(f"{spec!r} is not an entrypoint: write module:function")
    if plugin_dir not in sys.path:
        sys.path.insert(0, plugin_dir)
    module = importlib.import_module(module_name)
    handler = getattr(module, function, None)
    if not callable(handler):
        raise AttributeError(f"module {module_name!r} has no function {function!r}")
    return handler  # type: ignore[no-any-return]


def _entrypoint() -> Handler:
    return load_entrypoint(settings.get("MIGRATE_ENTRYPOINT"), settings.get("MIGRATE_PLUGIN_DIR"))


def _plugin_handler() -> Handler:
    """The plugin's entrypoint, wrapped in the concerns (cache, invocation metrics)."""
    from .concerns import wrap

    handler = _entrypoint()
    return wrap(
        handler,
        plugin=settings.get("MIGRATE_PLUGIN"),
        version=settings.get("MIGRATE_PLUGIN_VERSION"),
    )


def bus_check(bus: Bus) -> Check:
    def check() -> str | None:
        from .bus.base import BusUnavailable

        try:
            bus.ping()
        except BusUnavailable as exc:
            return f"the bus ({bus.kind}) does not answer: {exc}"
        return None

    return check


def service_app() -> App:
    handler = _plugin_handler()
    app = App("service")
    plugin = settings.get("MIGRATE_PLUGIN")
    debug = settings.get("MIGRATE_DEBUG_ERRORS") == "1"
    if settings.get("MIGRATE_BUS"):
        from .bus import connect

        bus = connect()
        app.checks.append(bus_check(bus))
        app.closers.append(bus.close)

    def invoke(request: RequestHandler, match: re.Match[str]) -> Response:
        from . import tracing

        payload = request.read_json_object(MAX_BODY, empty={})
        if isinstance(payload, Response):
            return payload
        parent = request.headers.get("traceparent")
        attributes = {"migrate.plugin": plugin, "migrate.role": "service"}
        try:
            with tracing.span(f"invoke {plugin}", traceparent=parent, attributes=attributes) as tp:
                result = handler(payload)
        except Exception as exc:
            # The message may hold a secret: it goes to the log, the caller gets an id
            # to look it up (MIGRATE_DEBUG_ERRORS=1 returns the details, for development).
            error_id = uuid.uuid4().hex[:16]
            trace = _trace()
            log("error", "the plugin raised", id=error_id, error=repr(exc), traceback=trace)
            details = (
                {"detail": f"{type(exc).__name__}: {exc}", "traceback": trace} if debug else {}
            )
            return error(500, "the plugin failed", id=error_id, **details)
        try:
            body = json.dumps(result, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            return error(500, f"the plugin's result is not JSON: {exc}")
        return Response(200, body, headers={"traceparent": tp})

    app.route("/invoke", "POST", invoke)
    return app


def worker_app() -> App:
    from .worker import Worker

    # the Worker wraps the handler in the concerns itself
    worker = Worker(_entrypoint(), plugin=settings.get("MIGRATE_PLUGIN"))
    app = App("worker")
    app.checks.append(worker.ready)
    app.main = worker.run
    app.closers.append(worker.close)
    return app


def orchestrator_app() -> App:
    from .orchestrator import build

    return build()


BUILDERS: dict[str, Callable[[], App]] = {
    "service": service_app,
    "worker": worker_app,
    "orchestrator": orchestrator_app,
}


def _address() -> tuple[str, int]:
    return settings.get("HOST"), settings.get_int("PORT")


def serve() -> int:
    """Run the role of MIGRATE_ROLE until SIGTERM/SIGINT. Returns the exit code."""
    from . import tracing

    role = settings.get("MIGRATE_ROLE")
    if role not in ROLES:
        log("error", f"MIGRATE_ROLE={role!r} is not a role: set it to {', '.join(ROLES)}")
        return 1
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # No lock may be taken in a signal handler (the main thread may hold it,
        # e.g. the log's): a thread logs and sets the event.
        name = signal.Signals(signum).name

        def stopping() -> None:
            log("info", "stopping", signal=name)
            stop.set()

        threading.Thread(target=stopping, name="stop", daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        tracing.setup()
    except Exception as exc:  # tracing is an aid: never a reason not to serve
        log("warning", "tracing is off: its setup failed", error=f"{type(exc).__name__}: {exc}")
    try:
        app = BUILDERS[role]()
    except Exception as exc:
        log(
            "error",
            f"cannot start the {role}",
            entrypoint=settings.get("MIGRATE_ENTRYPOINT") if role != "orchestrator" else None,
            error=f"{type(exc).__name__}: {exc}",
        )
        tracing.shutdown()
        return 1
    try:
        host, port = _address()
        server = RuntimeServer((host, port), app)
    except (OSError, ValueError, OverflowError) as exc:  # taken, not a number, over 65535
        log(
            "error",
            "cannot listen",
            host=settings.get("HOST"),
            port=settings.get("PORT"),
            error=f"{type(exc).__name__}: {exc}",
        )
        app.close()
        tracing.shutdown()
        return 1
    http_thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="http", daemon=True
    )
    http_thread.start()
    log(
        "info",
        "listening",
        role=role,
        host=host,
        port=server.server_address[1],
        entrypoint=settings.get("MIGRATE_ENTRYPOINT") if role != "orchestrator" else None,
    )
    code = 0
    try:
        app.main(stop)
    except Exception as exc:
        log("error", f"the {role} failed", error=repr(exc), traceback=_trace())
        code = 1
    server.stopping.set()
    server.shutdown()  # serve_forever returns: no new connections
    if not server.drain(DRAIN_S):
        log("warning", "requests still in flight at exit", waited_s=DRAIN_S)
    server.server_close()
    app.close()
    try:
        tracing.shutdown()
    except Exception as exc:
        log("warning", "flushing the spans failed", error=f"{type(exc).__name__}: {exc}")
    log("info", "stopped", exit_code=code)
    return code


def check() -> int:
    """The HEALTHCHECK: 0 when this container's /healthz answers 200, else 1.

    Uses http.client directly, so no proxy variable can send it elsewhere.
    """
    host, port = _address()
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    connection = http.client.HTTPConnection(host, port, timeout=3)
    try:
        connection.request("GET", "/healthz")
        return 0 if connection.getresponse().status == 200 else 1
    except (OSError, http.client.HTTPException):
        return 1
    finally:
        connection.close()
