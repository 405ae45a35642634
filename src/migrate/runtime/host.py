"""Serve one legacy plugin over HTTP: `GET /healthz` and `POST /invoke` (DESIGN 3.7).

The legacy application called `handle(payload: dict) -> dict` in-process;
the container calls it with the JSON body of `POST /invoke` and answers with
its result as JSON. Standard library only: this file runs inside the image,
on whatever Python the base image has, with nothing else installed.

Environment: `MIGRATE_ENTRYPOINT` (`module:function`, default `plugin:handle`),
`MIGRATE_PLUGIN_DIR` (where the plugin's modules are; default the working
directory), `MIGRATE_PLUGIN` (its name, for logs), `HOST` (default 0.0.0.0),
`PORT` (default 8080; 0 picks a free port and logs it). Logs are one JSON
object a line on stdout. SIGTERM or SIGINT stops the server cleanly: it
stops accepting, lets requests in flight finish, logs "stopped", exits 0.
"""

from __future__ import annotations

import datetime as dt
import http.client
import importlib
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

DEFAULT_ENTRYPOINT = "plugin:handle"
DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 8080
MAX_BODY = 16 * 1024 * 1024  # bytes; a larger payload is refused with 413

Handler = Callable[[dict[str, Any]], Any]

_log_lock = threading.Lock()


def log(level: str, message: str, **fields: Any) -> None:
    """One JSON object a line on stdout: what a log collector expects from a container."""
    record = {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "level": level,
        "plugin": os.environ.get("MIGRATE_PLUGIN", ""),
        "message": message,
        **fields,
    }
    line = json.dumps(record, default=str)
    with _log_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


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


class PluginServer(ThreadingHTTPServer):
    # Requests in flight finish before server_close() returns: a clean shutdown.
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: Handler) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, RequestHandler)
        self.handler = handler


class RequestHandler(BaseHTTPRequestHandler):
    server: PluginServer
    protocol_version = "HTTP/1.1"
    server_version = "migrate-plugin-host"

    def do_GET(self) -> None:
        started = time.monotonic()
        if self._path() == "/healthz":
            self._reply(200, {"status": "ok"}, started)
        else:
            self._reply(404, {"error": f"no such endpoint {self._path()}"}, started)

    def do_POST(self) -> None:
        started = time.monotonic()
        if self._path() != "/invoke":
            self._reply(404, {"error": f"no such endpoint {self._path()}"}, started)
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._reply(400, {"error": "bad Content-Length"}, started)
            return
        if length > MAX_BODY:
            self.close_connection = True
            self._reply(413, {"error": f"payload larger than {MAX_BODY} bytes"}, started)
            return
        body = self.rfile.read(length) if length else b"{}"
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._reply(400, {"error": f"the body is not JSON: {exc}"}, started)
            return
        if not isinstance(payload, dict):
            self._reply(400, {"error": "the body must be a JSON object"}, started)
            return
        try:
            result = self.server.handler(payload)
        except Exception as exc:
            log("error", "the plugin raised", error=repr(exc), traceback=traceback.format_exc())
            self._reply(500, {"error": f"{type(exc).__name__}: {exc}"}, started)
            return
        try:
            encoded = json.dumps(result).encode()
        except (TypeError, ValueError) as exc:
            self._reply(500, {"error": f"the plugin's result is not JSON: {exc}"}, started)
            return
        self._send(200, encoded, started)

    def _path(self) -> str:
        return urlsplit(self.path).path

    def _reply(self, status: int, document: dict[str, Any], started: float) -> None:
        self._send(status, json.dumps(document).encode(), started)

    def _send(self, status: int, body: bytes, started: float) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self._path() != "/healthz" or status != 200:  # health probes would drown the log
            log(
                "info",
                "request",
                method=self.command,
                path=self._path(),
                status=status,
                ms=round((time.monotonic() - started) * 1000, 1),
            )

    def log_message(self, format: str, *args: Any) -> None:
        """Silence http.server's own stderr lines: requests are logged as JSON above."""


def _address() -> tuple[str, int]:
    host = os.environ.get("HOST") or DEFAULT_HOST
    port = int(os.environ.get("PORT") or DEFAULT_PORT)
    return host, port


def serve() -> int:
    """Load the entrypoint, serve until SIGTERM/SIGINT. Returns the exit code."""
    spec = os.environ.get("MIGRATE_ENTRYPOINT") or DEFAULT_ENTRYPOINT
    plugin_dir = os.environ.get("MIGRATE_PLUGIN_DIR") or os.getcwd()
    try:
        handler = load_entrypoint(spec, plugin_dir)
    except Exception as exc:
        log("error", "cannot load the entrypoint", entrypoint=spec, error=repr(exc))
        return 1
    host, port = _address()
    try:
        server = PluginServer((host, port), handler)
    except OSError as exc:
        log("error", "cannot listen", host=host, port=port, error=str(exc))
        return 1

    def stop(signum: int, frame: FrameType | None) -> None:
        log("info", "stopping", signal=signal.Signals(signum).name)
        # shutdown() waits for serve_forever() to return: never call it on its own thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log("info", "listening", host=host, port=server.server_address[1], entrypoint=spec)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    log("info", "stopped")
    return 0


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
