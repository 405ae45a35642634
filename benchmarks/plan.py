"""How fast `migrate plan` of the example app is, cold and warm, against
`python -c "import typer"` in the same run.

Issue 14 asks for `plan` <= 1.0 s with the `k8s` extra (kubernetes-validate, Pulumi)
and <= 0.3 s when nothing changed since the last plan. Run:

    python benchmarks/plan.py [runs] [--no-bytecode]

It initialises a project on examples/agents-app in a temporary directory, with its
own cache directory (MIGRATE_CACHE_DIR, see migrate/state/cache.py), then runs `runs`
times each (default 7), alternating, as fresh processes:
- `import typer`: the peer;
- cold `migrate plan`: the cache directory emptied first (every object validated,
  every template compiled);
- warm `migrate plan`: nothing changed since the previous plan (all answers cached);
and prints medians, the ratios to the peer, and CPU seconds (user + system) of the
processes, which a busy machine disturbs less than the wall clock.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLE_APP = Path(__file__).resolve().parent.parent / "examples" / "agents-app"


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        argv, check=True, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    flags = {a for a in sys.argv[1:] if a.startswith("--")}
    numbers = [a for a in sys.argv[1:] if not a.startswith("--")]
    runs = int(numbers[0]) if numbers else 7
    migrate = shutil.which("migrate") or str(Path(sys.executable).with_name("migrate"))
    if not Path(migrate).exists():
        sys.exit("migrate is not installed in this environment")
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        root = Path(tmp)
        project, cache = root / "project", root / "cache"
        env = {**os.environ, "MIGRATE_CACHE_DIR": str(cache)}
        env.pop("MIGRATE_NO_CACHE", None)
        # as installed: modules load from bytecode (a wheel's install compiles it; a source
        # checkout under PYTHONDONTWRITEBYTECODE=1 would compile ~90 modules on every run).
        # `--no-bytecode` measures that case.
        if "--no-bytecode" in flags:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(root / "bytecode")
        project.mkdir()
        subprocess.run(
            [migrate, "init", "--source", str(EXAMPLE_APP)],
            check=True,
            cwd=project,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        peer = [sys.executable, "-c", "import typer"]
        plan = [migrate, "plan"]
        timed(peer, project, env)  # warm the file system cache (and compile the bytecode)
        timed(plan, project, env)
        samples: dict[str, list[tuple[float, float]]] = {"import typer": [], "cold": [], "warm": []}
        for _ in range(runs):
            samples["import typer"].append(timed(peer, project, env))
            shutil.rmtree(cache, ignore_errors=True)
            samples["cold"].append(timed(plan, project, env))
            samples["warm"].append(timed(plan, project, env))
    base = statistics.median(w for w, _ in samples["import typer"])
    labels = {
        "import typer": 'python -c "import typer"',
        "cold": "migrate plan, cold (no cache)",
        "warm": "migrate plan, warm (nothing changed)",
    }
    bytecode = "no bytecode files" if "--no-bytecode" in flags else "bytecode files"
    print(
        f"runs: {runs}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, "
        f"{bytecode}, DOCKER_HOST={os.environ.get('DOCKER_HOST', '(unset)')}"
    )
    for name, values in samples.items():
        wall = statistics.median(w for w, _ in values)
        cpu = statistics.median(c for _, c in values)
        print(
            f"{labels[name]:38} median {wall:6.3f} s  cpu {cpu:6.3f} s  "
            f"ratio {wall / base:5.2f}x import typer"
        )


if __name__ == "__main__":
    main()
