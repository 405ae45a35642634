"""How fast `migrate --help` starts, against `python -c "import typer"` in the same run.

The foundation issue asks for at most 3x. Run: `python benchmarks/startup.py [runs]`.
Each command is run `runs` times (default 15) as a fresh process, alternating,
and the medians are compared.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    migrate = shutil.which("migrate") or sys.exit("migrate is not installed in this environment")
    commands = {
        "import typer": [sys.executable, "-c", "import typer"],
        "migrate --help": [migrate, "--help"],
        "migrate plan --help": [migrate, "plan", "--help"],
    }
    for argv in commands.values():  # warm the file cache
        timed(argv)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            samples[name].append(timed(argv))
    peer = statistics.median(samples["import typer"])
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:22} median {median * 1000:7.1f} ms   ratio {median / peer:4.2f}x")


if __name__ == "__main__":
    main()
