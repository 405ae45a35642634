"""The load generator of `bench`: C keep-alive HTTP/1.1 connections, each sending the
next request as soon as the last answer is read, for a fixed time (closed loop,
as wrk does). asyncio on raw streams: requests are prebuilt bytes, answers are
read by Content-Length, so the generator is not the bottleneck
(benchmarks/loadgen.py measures it beside wrk). Loopback only: the host is
always 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

HOST = "127.0.0.1"
MAX_REQUESTS = 2_000_000  # a bound on one run, whatever the duration
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0


@dataclass(frozen=True)
class Stats:
    count: int
    errors: int
    elapsed: float  # seconds
    p50_ms: float
    p95_ms: float
    p99_ms: float
    curve_ms: tuple[float, ...] = ()  # the 1st..100th percentiles, for the chart
    first_error: str = ""

    @property
    def rps(self) -> float:
        return self.count / self.elapsed if self.elapsed > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p95_ms": round(self.p95_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "errors": self.errors,
            "requests": self.count,
            "seconds": round(self.elapsed, 3),
        }


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values (0 for none)."""
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), round(q / 100.0 * len(ordered) + 0.5)))
    return float(ordered[rank - 1])


def summarize(
    latencies_ms: Sequence[float], errors: int, elapsed: float, first_error: str = ""
) -> Stats:
    ordered = sorted(latencies_ms)
    return Stats(
        count=len(ordered),
        errors=errors,
        elapsed=elapsed,
        p50_ms=percentile(ordered, 50),
        p95_ms=percentile(ordered, 95),
        p99_ms=percentile(ordered, 99),
        curve_ms=tuple(percentile(ordered, q) for q in range(1, 101)),
        first_error=first_error,
    )


def request_bytes(path: str, payload: dict[str, Any], port: int) -> bytes:
    body = json.dumps(payload).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode("latin-1") + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    close = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        lowered = name.strip().lower()
        if lowered == b"content-length":
            length = int(value.strip())
        elif lowered == b"connection" and value.strip().lower() == b"close":
            close = True
    body = await reader.readexactly(length) if length else b""
    return (-status if close else status), body


async def _connection(
    port: int,
    requests: Sequence[bytes],
    offset: int,
    stride: int,
    deadline: float,
    latencies: list[float],
    errors: list[str],
    budget: list[int],
) -> None:
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    index = offset
    clock = time.perf_counter
    try:
        while clock() < deadline and budget[0] > 0:
            budget[0] -= 1
            if conn is None:
                try:
                    conn = await asyncio.wait_for(
                        asyncio.open_connection(HOST, port), CONNECT_TIMEOUT
                    )
                except (OSError, TimeoutError) as exc:
                    errors.append(f"cannot connect to {HOST}:{port}: {exc}")
                    await asyncio.sleep(0.01)  # back off, bounded by the deadline
                    continue
            reader, writer = conn
            data = requests[index % len(requests)]
            index += stride
            started = clock()
            try:
                writer.write(data)
                status, body = await asyncio.wait_for(_read_response(reader), READ_TIMEOUT)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                errors.append(f"no answer: {type(exc).__name__}: {exc}")
                writer.close()
                conn = None
                continue
            latencies.append((clock() - started) * 1000.0)
            if abs(status) != 200:
                errors.append(_error_text(abs(status), body))
            if status < 0:  # the server closes this connection
                writer.close()
                conn = None
    finally:
        if conn is not None:
            conn[1].close()


def _error_text(status: int, body: bytes) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if isinstance(document, dict) and document.get("error"):
        return f"HTTP {status}: {document['error']}"
    return f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}"


def run(
    port: int,
    payloads: Sequence[dict[str, Any]],
    *,
    concurrency: int,
    duration: float,
    path: str = "/invoke",
    max_requests: int = MAX_REQUESTS,
    tick: Callable[[float], None] | None = None,
) -> Stats:
    """POST `payloads` (round robin) to 127.0.0.1:`port``path` over `concurrency`
    connections for `duration` seconds. `tick(seconds)` is called about 4 times a second."""
    requests = [request_bytes(path, p, port) for p in payloads] or [request_bytes(path, {}, port)]

    async def main() -> Stats:
        latencies: list[float] = []
        errors: list[str] = []
        budget = [max_requests]
        start = time.perf_counter()
        deadline = start + duration
        workers = [
            asyncio.create_task(
                _connection(port, requests, n, concurrency, deadline, latencies, errors, budget)
            )
            for n in range(concurrency)
        ]
        done = asyncio.gather(*workers)
        last = start
        while not done.done():
            await asyncio.wait([done], timeout=0.25)
            now = time.perf_counter()
            if tick is not None:
                tick(min(now, deadline) - min(last, deadline))
            last = now
        await done
        elapsed = time.perf_counter() - start
        return summarize(latencies, len(errors), elapsed, errors[0] if errors else "")

    return asyncio.run(main())
