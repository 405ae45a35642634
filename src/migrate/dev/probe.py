"""Is a container ready? One answer per probe kind, from this machine (127.0.0.1).

- http: `GET /readyz` answers 200 (the runtime: plugin imported, bus and database
  reachable). An image whose runtime predates `/readyz` (404) is asked `/healthz`.
- redis: `PING` answers `+PONG`.
- postgres: the server answers an SSLRequest (with `S` or `N`): it accepts
  connections on TCP, which the official image does only once initialised.

Each returns `(ready, reason)`; the reason says what was seen when not ready.
Standard library only; every call has a short timeout.
"""

from __future__ import annotations

import socket
import struct
import urllib.error
import urllib.request

TIMEOUT = 2.0  # seconds per probe


def probe(kind: str, url: str, port: int, *, timeout: float = TIMEOUT) -> tuple[bool, str]:
    if kind == "http":
        return http(url, timeout=timeout)
    if kind == "redis":
        return redis(port, timeout=timeout)
    if kind == "postgres":
        return postgres(port, timeout=timeout)
    raise ValueError(f"unknown probe {kind!r}")


def http(base_url: str, *, timeout: float = TIMEOUT) -> tuple[bool, str]:
    status, body = _get(f"{base_url}/readyz", timeout)
    if status == 404:  # a runtime from before /readyz: alive is all it can say
        status, body = _get(f"{base_url}/healthz", timeout)
        if status == 200:
            return True, "ready (/healthz: the image's runtime has no /readyz)"
    if status == 200:
        return True, "ready"
    if status == 0:
        return False, body
    return False, f"/readyz answered {status}: {body}"


def _get(url: str, timeout: float) -> tuple[int, str]:
    """(status, short body); status 0 when nothing answered (then body is why)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), _short(response.read())
    except urllib.error.HTTPError as exc:
        try:
            body = _short(exc.read())
        finally:
            exc.close()
        return int(exc.code), body
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return 0, f"no answer ({reason})"


def _short(data: bytes, limit: int = 300) -> str:
    text = data.decode("utf-8", errors="replace").strip().replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "…"


def redis(port: int, *, host: str = "127.0.0.1", timeout: float = TIMEOUT) -> tuple[bool, str]:
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(b"PING\r\n")
            answer = conn.recv(64)
    except OSError as exc:
        return False, f"no answer ({exc})"
    if answer.startswith(b"+PONG"):
        return True, "ready"
    return False, f"PING answered {_short(answer)!r}"


_SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def postgres(port: int, *, host: str = "127.0.0.1", timeout: float = TIMEOUT) -> tuple[bool, str]:
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(_SSL_REQUEST)
            answer = conn.recv(1)
    except OSError as exc:
        return False, f"no answer ({exc})"
    if answer in (b"S", b"N"):
        return True, "ready"
    return False, "the server closed the connection" if not answer else f"answered {answer!r}"
