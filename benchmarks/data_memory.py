"""Peak memory and time of `migrate data load` as files grow (issue 13, item 9).

For each size, one dataset holding a single JSON array file, and one holding the
same records as JSON Lines, are loaded by the CLI (a fresh schema each time);
then CSV files of 3 rows and a growing number of columns. Prints records, file
size, seconds and the peak RSS of the `migrate` process. Memory should stay flat
as the files grow; CSV time should grow linearly with the header's width.

Run: python benchmarks/data_memory.py [records ...]   (default 100000 400000 1600000)
Uses MIGRATE_DATABASE_URL when set, else an embedded PostgreSQL in a temporary directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIGRATE = [sys.executable, "-m", "migrate"]


def record(number: int) -> dict[str, object]:
    return {"id": number, "plugin": "planner", "status": "ok", "score": number / 7, "pad": "x" * 40}


def write_array(path: Path, records: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("[")
        for number in range(1, records + 1):
            out.write(("," if number > 1 else "") + json.dumps(record(number)) + "\n")
        out.write("]\n")


def write_lines(path: Path, records: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for number in range(1, records + 1):
            out.write(json.dumps(record(number)) + "\n")


def write_wide_csv(path: Path, columns: int, rows: int = 3) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write(",".join(f"c{i}" for i in range(columns)) + "\n")
        for row in range(rows):
            out.write(",".join(str(row) for _ in range(columns)) + "\n")


def run(project: Path, url: str, dataset: str) -> tuple[float, int]:
    """Seconds and peak RSS (bytes) of one `migrate data load --dataset D`, migrate
    running as installed: from bytecode (kept in the temporary directory's `bytecode`;
    a source checkout under PYTHONDONTWRITEBYTECODE=1 would compile it every run)."""
    env = {**os.environ, "MIGRATE_DATABASE_URL": url}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "migrate-bench-bytecode")
    argv = [*MIGRATE, "-C", str(project), "data", "load", "--dataset", dataset]
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {process.stderr.read().decode()}")  # type: ignore[union-attr]
    return seconds, usage.ru_maxrss * 1024


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [100_000, 400_000, 1_600_000]
    widths = [1_000, 10_000, 100_000]
    with tempfile.TemporaryDirectory(prefix="migrate-bench-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)
        app = root / "app" / "data"
        for records in sizes:
            (app / f"array{records}").mkdir(parents=True)
            write_array(app / f"array{records}" / "a.json", records)
            (app / f"lines{records}").mkdir(parents=True)
            write_lines(app / f"lines{records}" / "a.jsonl", records)
        for columns in widths:
            (app / f"wide{columns}").mkdir(parents=True)
            write_wide_csv(app / f"wide{columns}" / "a.csv", columns)
        url = os.environ.get("MIGRATE_DATABASE_URL")
        if not url:
            from migrate.data.database import start_embedded

            url = start_embedded(root / "pg")
        project = root / "project"
        subprocess.run(
            [*MIGRATE, "-C", str(project), "init", "--source", str(root / "app")],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(f"{'dataset':16} {'records':>10} {'MB':>8} {'seconds':>8} {'peak RSS MB':>12}")
        for records in sizes:
            for kind, name in (("JSON array", "array"), ("JSON Lines", "lines")):
                dataset = f"{name}{records}"
                size = sum(p.stat().st_size for p in (app / dataset).iterdir())
                seconds, peak = run(project, url, dataset)
                print(f"{kind:16} {records:10} {size / 1e6:8.1f} {seconds:8.2f} {peak / 1e6:12.0f}")
        print(f"\n{'CSV columns':16} {'rows':>10} {'MB':>8} {'seconds':>8} {'peak RSS MB':>12}")
        for columns in widths:
            dataset = f"wide{columns}"
            size = (app / dataset / "a.csv").stat().st_size
            seconds, peak = run(project, url, dataset)
            print(f"{columns:<16} {3:10} {size / 1e6:8.1f} {seconds:8.2f} {peak / 1e6:12.0f}")


if __name__ == "__main__":
    main()
