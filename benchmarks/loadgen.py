"""`migrate bench`'s load generator against Debian's `wrk`, same server, same script.

Starts the runtime serving a trivial plugin (`handle(payload) -> payload`) as a local
process on 127.0.0.1 (the code the images run; a container on host networking
serves the same way), then drives `POST /invoke` with keep-alive connections for
a fixed time: first with `wrk` (a Lua script sets the method and body), then with
migrate.compare.loadgen. Prints requests/s of each and the ratio (the issue's goal:
our generator at least 0.5 of wrk, so it is not what limits `migrate bench`).

Run: python benchmarks/loadgen.py [seconds] [connections]     (needs `wrk`: apt-get install wrk)
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from migrate.compare import loadgen

PAYLOAD = {"goal": "a; b; c", "channel": "slack"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_service(plugin_dir: Path, port: int) -> subprocess.Popen[bytes]:
    (plugin_dir / "plugin.py").write_text("def handle(payload):\n    return payload\n")
    env = dict(
        os.environ,
        MIGRATE_ROLE="service",
        HOST="127.0.0.1",
        PORT=str(port),
        MIGRATE_PLUGIN="echo",
        MIGRATE_PLUGIN_DIR=str(plugin_dir),
        MIGRATE_ENTRYPOINT="plugin:handle",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "migrate.runtime"], env=env, stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)  # polling for start-up, bounded by the deadline


def wrk(port: int, seconds: int, connections: int, script: Path) -> float:
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps(PAYLOAD))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script),
         f"http://127.0.0.1:{port}/invoke"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if not found:
        raise RuntimeError(f"cannot read wrk's output:\n{done.stdout}")
    return float(found.group(1))


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    connections = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="migrate-bench-loadgen-"))
    port = free_port()
    service = start_service(work, port)
    try:
        peer = wrk(port, seconds, connections, work / "post.lua")
        ours = loadgen.run(port, [PAYLOAD], concurrency=connections, duration=seconds)
    finally:
        service.terminate()
        service.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    print(f"POST /invoke, trivial plugin, {connections} keep-alive connections, {seconds} s each")
    print(f"wrk                      {peer:10.1f} requests/s")
    print(
        f"migrate bench generator  {ours.rps:10.1f} requests/s  (p50 {ours.p50_ms:.2f} ms, "
        f"p95 {ours.p95_ms:.2f} ms, errors {ours.errors})"
    )
    print(f"ratio (ours / wrk)       {ours.rps / peer:10.2f}")


if __name__ == "__main__":
    main()
