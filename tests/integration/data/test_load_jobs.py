"""`data load --jobs N`: how many files load at once (default `loader.WORKERS`, 4). The
number of workers must change nothing but the speed: the same rows, rejects and
bookkeeping with one worker as with many; the interpreter's switch interval, made
shorter while files load, is given back after every load, also one that fails."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from migrate import api
from migrate.data import loader
from migrate.errors import MigrateError
from tests.integration.data.cli import environment, migrate, project_for
from tests.integration.data.conftest import make_app, query


def _files() -> dict[str, bytes | str]:
    """Nine files of three datasets, of unequal sizes, with rejects in two of them."""
    files: dict[str, bytes | str] = {}
    for index in range(6):
        lines = [json.dumps({"file": index, "n": n}) for n in range(200 * (index + 1))]
        if index == 2:
            lines[7] = "not json"
        files[f"events/part-{index}.jsonl"] = "\n".join(lines) + "\n"
    files["users/users.csv"] = "id,name\n1,ada\n2,bob\n"
    files["users/more.csv"] = "id,name\n3,cy\n"
    files["settings/all.yaml"] = "- {k: 1}\n- {k: 2}\n- 3\n"
    return files


def _contents(url: str, schema: str) -> dict[str, list[tuple[object, ...]]]:
    tables = {
        "events": "SELECT _source, _record, doc::text FROM {}.events ORDER BY 1, 2",
        "users": "SELECT _source, _record, doc::text FROM {}.users ORDER BY 1, 2",
        "settings": "SELECT _source, _record, doc::text FROM {}.settings ORDER BY 1, 2",
        "rejects": "SELECT _source, _record, reason, raw FROM {}._migrate_rejects ORDER BY 1, 2",
        "files": "SELECT _source, dataset, table_name, sha256, bytes, records, rejected"
        " FROM {}._migrate_files ORDER BY 1",
    }
    return {name: query(url, sql.format(schema)) for name, sql in tables.items()}


@pytest.fixture
def pools(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of workers of each load, as the loader asks for its thread pool."""
    sizes: list[int] = []

    class Pool(ThreadPoolExecutor):
        def __init__(self, max_workers: int) -> None:
            sizes.append(max_workers)
            super().__init__(max_workers=max_workers)

    monkeypatch.setattr(loader, "ThreadPoolExecutor", Pool)
    return sizes


def test_one_worker_and_many_load_the_same(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, pools: list[int]
) -> None:
    app = make_app(tmp_path / "app", _files())
    # these files are small: without this the load would open one worker for them all
    monkeypatch.setattr(loader, "BYTES_PER_WORKER", 1)
    seen = {}
    for jobs in (1, 3, 16):
        project = tmp_path / f"project-{jobs}"
        api.init(project, app)
        schema = f"jobs_{jobs}"
        config = project / "migrate.yaml"
        config.write_text(
            config.read_text(encoding="utf-8").replace("schema: legacy", f"schema: {schema}"),
            encoding="utf-8",
        )
        result = api.data_load(project, database_url=database_url, workers=jobs)
        assert sum(d.loaded for d in result.datasets) == 4_199 + 3 + 2
        assert sum(d.rejected for d in result.datasets) == 2
        seen[jobs] = _contents(database_url, schema)
    assert pools == [1, 3, 9]  # 16 asked, one per file of the nine
    assert seen[1]["events"] and seen[1]["rejects"]
    assert seen[1] == seen[3] == seen[16]


def test_small_loads_open_fewer_workers(
    tmp_path: Path, database_url: str, pools: list[int]
) -> None:
    line = json.dumps({"pad": "x" * 1000}) + "\n"
    big = line * (loader.BYTES_PER_WORKER // len(line) + 1)  # a little over one worker's
    project = project_for(tmp_path, {f"events/{n}.jsonl": big for n in range(6)})
    api.data_load(project, database_url=database_url)
    # six files of a little more than BYTES_PER_WORKER each: six would be worth it, but
    # the default is four; a load of one small file opens one
    one = project_for(tmp_path / "one", {"events/a.jsonl": line, "events/b.jsonl": line})
    api.data_load(one, database_url=database_url)
    assert pools == [loader.WORKERS, 1]


def test_the_cli_takes_jobs_and_refuses_less_than_one(tmp_path: Path, database_url: str) -> None:
    project = project_for(tmp_path, _files())
    done = migrate(project, database_url, "data", "load", "--jobs", "2", "-o", "json")
    assert done.returncode == 0, done.stderr
    loaded = {d["dataset"]: d["loaded"] for d in json.loads(done.stdout)["datasets"]}
    assert loaded == {"events": 4_199, "settings": 2, "users": 3}

    refused = migrate(project, database_url, "data", "load", "--jobs", "0")
    assert refused.returncode == 2
    assert "--jobs" in refused.stderr and "greater than or equal to 1" in refused.stderr


def test_the_api_refuses_less_than_one_worker(tmp_path: Path, database_url: str) -> None:
    project = project_for(tmp_path, {"events/a.jsonl": '{"a": 1}\n'})
    with pytest.raises(ValueError, match="at least 1"):
        api.data_load(project, database_url=database_url, workers=0)
    assert query(database_url, "SELECT to_regclass('legacy.events')") == [(None,)]


def test_the_switch_interval_is_given_back_after_a_load_and_a_failed_one(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = sys.getswitchinterval()
    assert before > loader.SWITCH_INTERVAL_S  # else the test could not tell
    project = project_for(tmp_path, _files())
    api.data_load(project, database_url=database_url)
    assert sys.getswitchinterval() == before

    # a file that becomes a directory once the load has begun: a worker fails on it
    other = project_for(tmp_path / "other", {f"orders/{n}.jsonl": '{"a": 1}\n' for n in range(4)})
    victim = other.parent / "app" / "data" / "orders" / "2.jsonl"
    real = loader.load_file
    seen: list[float] = []

    def load_file(*args: Any, **kwargs: Any) -> Any:
        seen.append(sys.getswitchinterval())
        if victim.is_file():
            victim.unlink()
            victim.mkdir()
        return real(*args, **kwargs)

    monkeypatch.setattr(loader, "load_file", load_file)
    with pytest.raises(MigrateError, match=r"2\.jsonl"):
        api.data_load(other, database_url=database_url)
    assert seen and all(s == pytest.approx(loader.SWITCH_INTERVAL_S) for s in seen)
    assert sys.getswitchinterval() == before


def test_overlapping_loads_give_the_interval_back_once_the_last_ends() -> None:
    before = sys.getswitchinterval()
    loader._quick_switches(+1)
    assert sys.getswitchinterval() == pytest.approx(loader.SWITCH_INTERVAL_S)
    loader._quick_switches(+1)  # a second load in the same process, started meanwhile
    loader._quick_switches(-1)
    assert sys.getswitchinterval() == pytest.approx(loader.SWITCH_INTERVAL_S)
    loader._quick_switches(-1)
    assert sys.getswitchinterval() == before


def test_the_lines_before_the_work_are_what_rich_writes(tmp_path: Path, database_url: str) -> None:
    """The warnings and the database line on stderr are written without Rich when stderr
    is not a terminal; with FORCE_COLOR set (empty: still no colours) Rich writes them.
    Byte for byte the same."""
    project = project_for(tmp_path, {"events/a.jsonl": '{"a": 1}\n'})
    (project.parent / "app" / "plugins").mkdir(exist_ok=True)  # no plugin: a warning
    env = environment(database_url)
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(name, None)

    def load(**extra: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "migrate", "-C", str(project), "data", "load"]
        return subprocess.run(command, env={**env, **extra}, capture_output=True, text=True)

    plain = load()
    query(database_url, "DROP SCHEMA legacy CASCADE")
    rich = load(FORCE_COLOR="")
    assert plain.returncode == rich.returncode == 0, plain.stderr + rich.stderr
    assert "warning: no plugins in" in plain.stderr and "database: " in plain.stderr
    assert plain.stderr == rich.stderr
