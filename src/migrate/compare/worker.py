"""The legacy host, one plugin: run as a script with a virtualenv's Python.

Standard library only (it runs in the plugin's own environment, where migrate
is not installed). It imports the entrypoint the way `migrate.legacy.load_handler`
does (from the plugin's directory, under a private module name, the directory
on sys.path while it imports) and answers requests on its stdin/stdout, one
JSON object a line, on a copy of the original stdout: what the plugin prints
goes to stderr and cannot break the protocol.

    argv: MODULE_FILE FUNCTION PLUGIN_DIR
    first line out: {"ready": true} or {"ready": false, "error": "..."}
    {"op": "call", "input": {...}}  -> {"ok": true, "output": ...} | {"ok": false, "error": ...}
    {"op": "bench", "inputs": [...], "concurrency": C, "duration": S, "limit": N}
        -> {"count", "errors", "elapsed", "latencies_ms": [...]}   (the calls, in-process)
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
import time
from typing import Any


def _load(module_file: str, function: str, plugin_dir: str) -> Any:
    stem = os.path.splitext(os.path.basename(module_file))[0]
    if stem == "__init__":
        stem = os.path.basename(os.path.dirname(module_file))
    unique = f"_migrate_legacy_{abs(hash(plugin_dir))}_{stem}"
    spec = importlib.util.spec_from_file_location(unique, module_file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {module_file}")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, plugin_dir)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(plugin_dir)
    handler = getattr(module, function, None)
    if not callable(handler):
        raise AttributeError(f"{module_file} defines no {function!r}")
    return handler


def _call(handler: Any, payload: dict[str, Any]) -> dict[str, Any]:
    try:
        result = handler(dict(payload))
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    try:  # what the runtime would send: JSON, no NaN
        text = json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return {"ok": False, "error": f"the plugin's result is not JSON: {exc}"}
    return {"ok": True, "output": json.loads(text)}


def _bench(handler: Any, request: dict[str, Any]) -> dict[str, Any]:
    inputs = request["inputs"] or [{}]
    concurrency = max(1, int(request["concurrency"]))
    duration = float(request["duration"])
    limit = int(request.get("limit") or 1_000_000)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    start = time.perf_counter()
    deadline = start + duration

    def loop(offset: int) -> None:
        mine: list[float] = []
        failed = 0
        i = offset
        while time.perf_counter() < deadline and len(mine) < limit // concurrency + 1:
            payload = inputs[i % len(inputs)]
            i += concurrency
            t0 = time.perf_counter()
            try:
                result = handler(dict(payload))
                json.dumps(result, allow_nan=False)
            except Exception:
                failed += 1
            mine.append((time.perf_counter() - t0) * 1000.0)
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=loop, args=(n,), daemon=True) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + 60.0)
    elapsed = time.perf_counter() - start
    return {
        "count": len(latencies),
        "errors": errors[0],
        "elapsed": elapsed,
        "latencies_ms": latencies,
    }


def main() -> int:
    module_file, function, plugin_dir = sys.argv[1:4]
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # the plugin's prints go to stderr
    sys.stdout = sys.stderr

    def answer(document: dict[str, Any]) -> None:
        protocol.write(json.dumps(document) + "\n")
        protocol.flush()

    try:
        handler = _load(module_file, function, plugin_dir)
    except BaseException as exc:
        answer({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1
    answer({"ready": True})
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if request.get("op") == "bench":
            answer(_bench(handler, request))
        else:
            answer(_call(handler, request.get("input") or {}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
