"""Issue 13, item 3: the plugin host against hostile requests, through real HTTP."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write
from tests.unit.test_images_runtime import DEADLINE, Host, start

ECHO = "def handle(payload):\n    return {'got': payload}\n"
SECRET_RAISER = (
    "def handle(payload):\n"
    "    raise RuntimeError('cannot connect to postgresql://app:hunter2@db/x')\n"
)


def stop(host: Host) -> None:
    if host.process.poll() is None:
        host.process.kill()
    host.process.wait(timeout=DEADLINE)
    assert host.process.stdout is not None
    host.process.stdout.close()


@pytest.fixture
def echo(tmp_path: Path) -> Iterator[Host]:
    write(tmp_path / "echo" / "plugin.py", ECHO)
    host = Host(start(tmp_path / "echo", "plugin:handle"))
    try:
        yield host
    finally:
        stop(host)


def raw(port: int, request: bytes) -> tuple[int, dict[str, str], Any]:
    """Send `request` as bytes; the status, headers (lower-case) and JSON body."""
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as connection:
        connection.sendall(request)
        connection.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    assert data, "the connection was dropped without an answer"
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers["content-length"])
    assert body[length:] == b"", "more than one answer: a body was taken for a request"
    return status, headers, json.loads(body[:length])


def post(body: bytes, *headers: str) -> bytes:
    extra = "".join(f"{header}\r\n" for header in headers)
    return f"POST /invoke HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode() + body


def test_a_negative_content_length_is_refused(echo: Host) -> None:
    status, _, body = raw(echo.port, post(b'{"a": 1}' + b" " * 1000, "Content-Length: -1"))
    assert status == 400 and "Content-Length" in body["error"]


def test_a_chunked_body_never_calls_the_plugin_with_nothing(echo: Host) -> None:
    chunked = b'8\r\n{"a": 1}\r\n0\r\n\r\n'
    status, _, body = raw(echo.port, post(chunked, "Transfer-Encoding: chunked"))
    assert status in (411, 501) and "error" in body
    assert not any(
        line.get("path") == "/invoke" and line.get("status") == 200 for line in echo.lines
    )


def test_a_deeply_nested_body_gets_a_400(echo: Host) -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    nested = b'{"a": ' + deep + b"}"
    status, _, body = raw(echo.port, post(nested, f"Content-Length: {len(nested)}"))
    assert status == 400 and "error" in body
    assert echo.request("GET", "/healthz") == (200, {"status": "ok"})


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(echo: Host, constant: str) -> None:
    document = f'{{"x": {constant}}}'.encode()
    status, _, body = raw(echo.port, post(document, f"Content-Length: {len(document)}"))
    assert status == 400 and constant.lstrip("-") in body["error"]


@pytest.mark.parametrize(
    ("method", "allow"), [("PUT", "POST"), ("DELETE", "POST"), ("GET", "POST")]
)
def test_other_methods_on_invoke_get_a_json_405(echo: Host, method: str, allow: str) -> None:
    request = f"{method} /invoke HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode()
    status, headers, body = raw(echo.port, request)
    assert status == 405 and headers["allow"] == allow and "error" in body
    assert headers["content-type"] == "application/json"


def test_a_plugin_error_is_logged_with_an_id_and_not_returned(tmp_path: Path) -> None:
    write(tmp_path / "boom" / "plugin.py", SECRET_RAISER)
    host = Host(start(tmp_path / "boom", "plugin:handle"))
    try:
        status, body = host.request("POST", "/invoke", b"{}")
        assert status == 500
        assert set(body) == {"error", "id"} and body["error"] == "the plugin failed"
        assert "hunter2" not in json.dumps(body)
        record = host.wait_for("the plugin raised")
        assert record["id"] == body["id"] and "hunter2" in record["error"]
    finally:
        stop(host)


def test_debug_errors_return_the_details(tmp_path: Path) -> None:
    write(tmp_path / "boom" / "plugin.py", SECRET_RAISER)
    host = Host(start(tmp_path / "boom", "plugin:handle", MIGRATE_DEBUG_ERRORS="1"))
    try:
        status, body = host.request("POST", "/invoke", b"{}")
        assert status == 500 and body["error"] == "the plugin failed" and body["id"]
        assert "RuntimeError: cannot connect" in body["detail"]
        assert "raise RuntimeError" in body["traceback"]
    finally:
        stop(host)
