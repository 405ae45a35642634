"""Generate the deterministic demo datasets of examples/agents-app/data/.

Stdlib only. Wipes and recreates the data folder on every run; the same
seed always produces byte-identical files.

Usage: python examples/make_agents_app_data.py [--records N] [--out DIR]
(`--help` says more; with no options it rewrites examples/agents-app/data/).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

DATA = Path(__file__).resolve().parent / "agents-app" / "data"
RECORDS = 1000  # agent runs per monthly file: the default, which the committed data has
DATASETS = {"agent_runs", "events", "conversations", "users", "settings", "metrics"}
RNG = Random(2026)

PLUGINS = ["planner", "code_reviewer", "Report-Writer", "summarizer", "web_researcher", "notifier"]
EVENTS = {
    "planner": "plan.ready",
    "code_reviewer": "review.done",
    "Report-Writer": "report.ready",
    "summarizer": "summary.ready",
    "web_researcher": "research.done",
    "notifier": "notification.sent",
}
STATUSES = ["succeeded"] * 16 + ["failed"] * 2 + ["timeout", "cancelled"]
GOALS = [
    "Migrate the billing service; then write a rollback plan",
    "Review the auth module. Fix lint errors. Open a pull request",
    "Summarize last week's incidents and then notify the on-call team",
    "Research pgvector options; compare costs; draft a recommendation",
    "Plan the Q2 roadmap. Estimate effort. Share with stakeholders",
]
CODE = [
    "def add(a, b):\n\treturn a + b\n",
    'print("hello, world")  # TODO remove\n',
    'import os\npath = "C:\\\\temp\\\\out.txt"\nos.remove(path)\n',
    "class Foo:\n    def bar(self):   \n        pass\n",
    'x = {"key": \'value\'}\nassert x["key"] == "value"\n',
]
QUERIES = ["postgresql jsonb indexing", "kubernetes cronjob retries", "python json decoder"]
CHANNELS = ["email", "slack", "webhook"]
TAGS = ["prod", "staging", "nightly", "manual", "backfill", "canary"]
# Awkward-but-valid strings, injected into a handful of records.
SPECIAL = [
    "tab\there and\tthere",
    "line1\nline2\r\nline3",
    "C:\\Users\\agent\\logs\\run.log",
    'she said "ship it" and left',
    "\\N",
    "null marker \\N inside text",
    "café, résumé, naïve, é",
    "漢字かな交じり文",
    "deploy 🚀 done ✅ by 👩\u200d💻",
    'mixed: \\N\t"q" é 漢字 🎉\nend',
    "",
    "NULL",
]
FIRST = [
    "Ada",
    "José",
    "Zoë",
    "Li",
    "Amara",
    "Søren",
    "Priya",
    "Mateo",
    "Yuki",
    "Olu",
    "王芳",
    "Chloé",
]
LAST = ["Lovelace", "García", "O'Brien", "Nguyen", "Okafor", "Müller", "Patel", "Rossi", "Tanaka"]
TEAMS = ["platform", "data", "ml, infra", "support", 'R&D "skunkworks"']


def iso(ts: datetime) -> str:
    """ISO-8601 UTC timestamp with milliseconds and a ``Z`` suffix."""
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc(year: int, month: int, day: int = 1) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


def write_jsonl(path: Path, rows: list[dict[str, Any]], ascii_only: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=ascii_only, separators=(",", ":")) + "\n")


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def write_csv(path: Path, header: list[str], rows: list[list[Any]], bom: bool = False) -> None:
    """RFC 4180: CRLF line ends, minimal quoting (commas, quotes, newlines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)


def yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)  # a valid YAML double-quoted scalar


def yaml_lines(value: Any, indent: int = 0) -> list[str]:
    """Tiny block-style YAML emitter for dicts, lists and scalars."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:")
                lines.extend(yaml_lines(item, indent + 2))
            elif isinstance(item, (dict, list)):
                lines.append(f"{pad}{key}: {'{}' if isinstance(item, dict) else '[]'}")
            else:
                lines.append(f"{pad}{key}: {yaml_scalar(item)}")
    else:
        for item in value:
            if isinstance(item, dict) and item:
                sub = yaml_lines(item, indent + 2)
                lines.append(f"{pad}- {sub[0].lstrip()}")
                lines.extend(sub[1:])
            else:
                lines.append(f"{pad}- {yaml_scalar(item)}")
    return lines


def write_yaml(path: Path, docs: list[Any], comment: str, multi: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = [f"# {comment}"]
    for doc in docs:
        if multi:
            out.append("---")
        out.extend(yaml_lines(doc))
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def run_io(plugin: str, status: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Plugin-specific ``input`` and ``output`` objects of one run."""
    ok = status == "succeeded"
    if plugin == "planner":
        goal = RNG.choice(GOALS)
        steps = [s for s in re.split(r"\s*(?:;|\.|\bthen\b)\s*", goal) if s.strip()]
        return {"goal": goal, "max_steps": RNG.randint(3, 8)}, (
            {"step_count": len(steps), "first_step": steps[0]} if ok else None
        )
    if plugin == "code_reviewer":
        code = RNG.choice(CODE)
        return {"code": code, "language": "python"}, (
            {"issue_count": RNG.randint(0, 5), "approved": RNG.random() < 0.4} if ok else None
        )
    if plugin == "Report-Writer":
        title = f"Weekly report #{RNG.randint(1, 52)}"
        return {"title": title, "sections": ["Plan", "Review", "Findings"]}, (
            {"word_count": RNG.randint(80, 900), "format": "markdown"} if ok else None
        )
    if plugin == "summarizer":
        text = " ".join(RNG.sample(GOALS, 3))
        return {"text": text, "max_sentences": 2}, (
            {"summary": text.split(".")[0], "ratio": round(RNG.uniform(0.1, 0.6), 3)}
            if ok
            else None
        )
    if plugin == "web_researcher":
        return {"query": RNG.choice(QUERIES), "top": 3}, (
            {"hits": RNG.randint(0, 3), "cached": RNG.random() < 0.7} if ok else None
        )
    return {"channel": RNG.choice(CHANNELS), "to": f"u-{RNG.randint(1, 300):04d}"}, (
        {"message_id": f"{RNG.getrandbits(64):016x}", "truncated": False} if ok else None
    )


def agent_runs(records: int = RECORDS) -> dict[str, list[dict[str, Any]]]:
    files: dict[str, list[dict[str, Any]]] = {}
    for month in (1, 2, 3):
        ts, rows = utc(2026, month), []
        for n in range(1, records + 1):
            ts += timedelta(seconds=RNG.randint(30, 5000), milliseconds=RNG.randint(0, 999))
            plugin, status = RNG.choice(PLUGINS), RNG.choice(STATUSES)
            duration = RNG.randint(5, 120_000 if status == "timeout" else 9_000)
            elapsed = timedelta(milliseconds=duration)
            payload, output = run_io(plugin, status)
            row: dict[str, Any] = {
                "id": f"run-2026-{month:02d}-{n:05d}",
                "plugin": plugin,
                "status": status,
                "started_at": iso(ts),
                "finished_at": None if status == "cancelled" else iso(ts + elapsed),
                "duration_ms": duration,
                "tokens": RNG.randint(0, 8000),
                "attempt": RNG.choice([1, 1, 1, 1, 2, 3]),
                "tags": RNG.sample(TAGS, RNG.randint(0, 3)),
                "input": payload,
                "output": output,
                "error": None if status == "succeeded" else f"{status}: {plugin} gave up",
            }
            if n % 83 == 0:  # ~12 records per file carry the awkward strings
                row["input"]["note"] = SPECIAL[(n // 83 + month) % len(SPECIAL)]
            if month == 2 and n == 42:  # huge integer and subnormal float, both valid JSON
                row["output"] = {"checksum": 123456789012345678901234567890, "min_loss": 1e-320}
            rows.append(row)
        files[f"runs-2026-{month:02d}.jsonl"] = rows
    return files


def events() -> list[dict[str, Any]]:
    ts, rows = utc(2026, 3, 1), []
    for seq in range(1, 501):
        ts += timedelta(seconds=RNG.randint(1, 600))
        source = RNG.choice(PLUGINS)
        rows.append(
            {
                "event_id": str(uuid.UUID(int=RNG.getrandbits(128), version=4)),
                "seq": seq,
                "type": RNG.choice(["task.created", EVENTS[source]]),
                "source": source,
                "occurred_at": iso(ts),
                "run_id": f"run-2026-03-{RNG.randint(1, 1000):05d}",
                "payload": {
                    "priority": RNG.choice(["low", "normal", "high"]),
                    "note": SPECIAL[seq % len(SPECIAL)] if seq % 50 == 0 else None,
                },
            }
        )
    return rows


def conversation(n: int) -> dict[str, Any]:
    ts = utc(2026, 1) + timedelta(minutes=RNG.randint(0, 130_000))
    messages = []
    for i in range(RNG.randint(1, 6)):
        role = "user" if i % 2 == 0 else "assistant"
        text = RNG.choice(GOALS) if role == "user" else f"Done: {RNG.choice(QUERIES)}."
        if n % 37 == 0 and i == 0:
            text = SPECIAL[n // 37 % len(SPECIAL)]
        messages.append({"role": role, "content": text, "ts": iso(ts + timedelta(seconds=30 * i))})
    return {
        "id": f"conv-{n:04d}",
        "user_id": f"u-{RNG.randint(1, 300):04d}",
        "title": RNG.choice(GOALS).split(";")[0].split(".")[0],
        "created_at": iso(ts),
        "messages": messages,
        "rating": RNG.choice([None, 1, 2, 3, 4, 5]),
        "archived": RNG.random() < 0.2,
    }


def users() -> list[list[Any]]:
    rows = []
    for n in range(1, 301):
        first, last = RNG.choice(FIRST), RNG.choice(LAST)
        bio = RNG.choice(
            [
                "",
                "Likes Postgres.",
                f"Works on {RNG.choice(TEAMS)}, mostly backend",
                'Says "it works on my machine", often',
                "Line one\nLine two, with a comma",
                "Café owner 漢字 🚀",
            ]
        )
        rows.append(
            [
                f"u-{n:04d}",
                f"{first}.{last}".lower().replace("'", ""),
                f"{last}, {first}" if n % 10 == 0 else f"{first} {last}",
                f"user{n}@example.com",
                RNG.choice(["admin", "member", "member", "viewer"]),
                RNG.choice(TEAMS),
                (date(2023, 1, 1) + timedelta(days=RNG.randint(0, 1100))).isoformat(),
                RNG.choice(["true", "false"]),
                "" if n % 25 == 0 else RNG.randint(1_000, 1_000_000),
                bio,
            ]
        )
    return rows


def daily_metrics() -> list[list[Any]]:
    rows = []
    for day in range(365):
        runs = RNG.randint(50, 400)
        failed = RNG.randint(0, runs // 10)
        p50 = RNG.randint(80, 900)
        rows.append(
            [
                (date(2025, 1, 1) + timedelta(days=day)).isoformat(),
                runs,
                runs - failed,
                failed,
                p50,
                p50 + RNG.randint(100, 5000),
                runs * RNG.randint(200, 900),
                f"{runs * RNG.uniform(0.001, 0.02):.4f}",
            ]
        )
    return rows


def hourly_metrics() -> list[dict[str, Any]]:
    start = utc(2026, 1)
    return [
        {
            "ts": iso(start + timedelta(hours=h)),
            "plugin": PLUGINS[h % len(PLUGINS)],
            "runs": (runs := RNG.randint(0, 60)),
            "errors": RNG.randint(0, runs // 5),
            "avg_ms": round(RNG.uniform(20, 3000), 2),
            "queue_depth": RNG.randint(0, 25),
        }
        for h in range(1000)
    ]


def settings(data: Path = DATA) -> None:
    plugin_cfg = {
        name: {
            "enabled": name != "web_researcher",
            "timeout_s": RNG.choice([10, 30, 60]),
            "retries": RNG.randint(0, 3),
            "env": {"LOG_LEVEL": "INFO"},
        }
        for name in PLUGINS
    }
    write_yaml(data / "settings" / "plugins.yaml", [plugin_cfg], "Per-plugin runtime settings.")
    schedules = [
        {
            "name": f"{plugin.lower()}-{when}",
            "plugin": plugin,
            "cron": cron,
            "enabled": RNG.random() < 0.8,
            "timezone": "Europe/Paris",
            "payload": {"goal": RNG.choice(GOALS)} if plugin == "planner" else {},
        }
        for plugin in PLUGINS
        for when, cron in (("nightly", "0 2 * * *"), ("weekly", "30 6 * * 1"))
    ]
    write_yaml(data / "settings" / "schedules.yml", [schedules], "Cron schedules, one per job.")
    flags = [
        {
            "flag": flag,
            "enabled": RNG.random() < 0.5,
            "rollout_percent": RNG.choice([0, 10, 50, 100]),
            "owners": RNG.sample(["alice", "bob", "chloé", "王芳"], 2),
            "description": text,
        }
        for flag, text in (
            ("streaming-output", "Stream tokens as they arrive"),
            ("parallel-plans", "Run plan steps in parallel: experimental"),
            ("pg-storage", "Store runs in PostgreSQL, not files"),
            ("emoji-reports", "Allow 🎉 in reports"),
            ("strict-review", 'Fail review on any "TODO"'),
        )
    ]
    write_yaml(
        data / "settings" / "feature-flags.yaml", flags, "One document per flag.", multi=True
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Generate the deterministic demo datasets of the example legacy "
        "application. The output directory is wiped and written again; the same options "
        "always give byte-identical files.",
    )
    parser.add_argument(
        "--records",
        type=int,
        default=RECORDS,
        metavar="N",
        help=f"agent runs per monthly file, the bulk of the data (default {RECORDS}, as "
        "committed); raise it for benchmarks and trials",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DATA,
        metavar="DIR",
        help="where the data/ tree goes (default examples/agents-app/data)",
    )
    args = parser.parse_args(argv)
    if args.records < 1:
        parser.error("--records must be at least 1")
    out: Path = args.out
    if out.exists() and (not out.is_dir() or any(p.name not in DATASETS for p in out.iterdir())):
        parser.error(f"{out} holds other files: refusing to wipe it; name a new directory")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    data: Path = args.out
    if data.exists():
        shutil.rmtree(data)
    for name, rows in agent_runs(args.records).items():
        write_jsonl(data / "agent_runs" / name, rows)
    write_jsonl(data / "events" / "events-2026-03.ndjson", events(), ascii_only=True)
    convs = [conversation(n) for n in range(1, 202)]
    write_json(data / "conversations" / "conversations-2026-q1.json", convs[:120])
    write_json(data / "conversations" / "conversations-2026-q2.json", convs[120:200])
    write_json(data / "conversations" / "pinned.json", convs[200])
    write_csv(
        data / "users" / "users.csv",
        [
            "id",
            "username",
            "display_name",
            "email",
            "role",
            "team",
            "signup_date",
            "active",
            "quota_tokens",
            "bio",
        ],
        users(),
        bom=True,
    )
    settings(data)
    write_csv(
        data / "metrics" / "daily" / "daily-2025.csv",
        ["date", "runs", "succeeded", "failed", "p50_ms", "p95_ms", "tokens", "cost_usd"],
        daily_metrics(),
    )
    write_jsonl(data / "metrics" / "hourly" / "hourly-2026-01.jsonl", hourly_metrics())
    print(f"wrote {sum(1 for p in data.rglob('*') if p.is_file())} files under {data}")


if __name__ == "__main__":
    main()
