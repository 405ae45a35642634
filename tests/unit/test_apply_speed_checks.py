"""What made the checks after `apply` faster keeps them proving the same things:
- an `equivalence` check runs beside its host's other checks, not after them, and both
  results land where they belong;
- concurrent candidates never share a port;
- a legacy worker read through its one reader thread still answers in order, and a
  worker that dies is an error (and stays one).
No Docker here: the legacy side is a real subprocess on this machine's Python."""

from __future__ import annotations

import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from migrate.checks import Check
from migrate.compare import candidate
from migrate.compare.legacy import LegacyError, LegacyProcess
from migrate.inventory import Plugin, PluginManifest
from migrate.reporting import NullReporter
from migrate.verify import runner
from migrate.verify.kinds import Outcome

DEADLINE = 30.0  # seconds a side waits for the other before it says they ran one after another


class _Ctx:
    """What `runner._run_all` reads of a context."""

    reporter = NullReporter()
    project_dir = Path(".")


def _job(index: int, raw: dict[str, object]) -> runner._Job:
    check = Check.model_validate(raw)
    return runner._Job(index, "containerize-services", check, check.label, check.kind, check.host)


def test_equivalence_runs_beside_the_hosts_other_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command check waits for the equivalence check to start: one after the other on
    one lane, the command would wait in vain and fail."""
    started = threading.Event()

    def fake(ctx: object, check: Check, timeout: float) -> Outcome:
        if check.kind == "equivalence":
            started.set()
            return Outcome(True, "equal")
        return Outcome(started.wait(DEADLINE), "listed")

    monkeypatch.setattr(runner, "_run_check", fake)
    jobs = [
        _job(0, {"command": {"run": "migrate images list --output json", "rc": 0}}),
        _job(1, {"equivalence": {"plugins": "all", "sample": 200}}),
    ]
    results = runner._run_all(_Ctx(), jobs, timeout=DEADLINE + 10)  # type: ignore[arg-type]
    assert [results[0].kind, results[1].kind] == ["command", "equivalence"]
    assert results[0].passed, results[0].message  # it saw the equivalence check running
    assert results[1].passed and results[1].message == "equal"
    assert {r.host for r in results.values()} == {"local://"}


def test_performance_stays_on_its_hosts_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    """A performance check measures time: nothing runs beside it on its host."""
    running: list[str] = []
    overlaps: list[str] = []
    lock = threading.Lock()

    def fake(ctx: object, check: Check, timeout: float) -> Outcome:
        with lock:
            if running:
                overlaps.append(f"{check.kind} with {running}")
            running.append(check.kind)
        deadline = time.monotonic() + 0.2
        while time.monotonic() < deadline:  # long enough for a second lane to start
            time.sleep(0.01)
        with lock:
            running.remove(check.kind)
        return Outcome(True, "ok")

    monkeypatch.setattr(runner, "_run_check", fake)
    jobs = [
        _job(0, {"command": {"run": "true", "rc": 0}}),
        _job(1, {"performance": {"plugins": "all", "p95_ms": 50}}),
        # nor does an equivalence check run beside a performance check: it loads the machine
        _job(2, {"equivalence": {"plugins": "all", "sample": 200}}),
    ]
    results = runner._run_all(_Ctx(), jobs, timeout=DEADLINE)  # type: ignore[arg-type]
    assert all(r.passed for r in results.values())
    assert overlaps == []


def test_free_ports_are_never_handed_out_twice() -> None:
    ports: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(50):
            port = candidate.free_port()
            with lock:
                ports.append(port)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ports) == 200
    assert len(set(ports)) == len(ports)


def _plugin(tmp_path: Path, code: str) -> Plugin:
    directory = tmp_path / "plugins" / "echo"
    directory.mkdir(parents=True)
    (directory / "main.py").write_text(textwrap.dedent(code))
    return Plugin("echo", directory, PluginManifest(name="echo", entrypoint="main:handle"))


def test_a_legacy_worker_answers_each_call_in_order(tmp_path: Path) -> None:
    plugin = _plugin(
        tmp_path,
        """
        calls = []

        def handle(payload):
            calls.append(payload["n"])
            return {"n": payload["n"], "calls": len(calls)}
        """,
    )
    with LegacyProcess(plugin, Path(sys.executable), "primary") as worker:
        answers = [worker.call({"n": n}) for n in range(50)]
    assert [a.output for a in answers] == [{"n": n, "calls": n + 1} for n in range(50)]


def test_a_legacy_worker_that_dies_is_an_error(tmp_path: Path) -> None:
    plugin = _plugin(
        tmp_path,
        """
        import os

        def handle(payload):
            if payload.get("die"):
                os._exit(3)
            return {"ok": True}
        """,
    )
    with LegacyProcess(plugin, Path(sys.executable), "primary") as worker:
        assert worker.call({}).output == {"ok": True}
        with pytest.raises(LegacyError, match=r"did not answer.*exited"):
            worker.call({"die": True})
        with pytest.raises(LegacyError, match="exited"):  # and stays gone
            worker.call({})
