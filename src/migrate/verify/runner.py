"""Run the checks of the selected phases' tasks and record which tasks are done.

Checks are grouped by host; the groups run in parallel on a small thread pool
(a slow ssh host does not hold up the local checks), the checks of one host
one after another. An `equivalence` check (migrate compare) needs no host and
measures no time: it runs in a group of its own, beside its host's checks (not
when a `performance` check is in the run: it would disturb the measurement).
Each check has a deadline (`--timeout`): every command it runs is killed then,
with its whole process group, and on a remote host by the
host's own `timeout` (hosts.py), and the check is an error "timed out after S
s" (it could not be run: never a pass, and told apart from a failure in JSON
and JUnit). A slow command does not condemn its host; a host that does not
answer at all does: its later checks are errors at once instead of waiting
again. The kinds that run in this process (`IN_PROCESS`: postgres_table,
event_flow, cache_hit) do not depend on the host, so they are always tried.
The core never prints: progress goes through the `Reporter`.

A task with no checks has nothing to verify: it counts as done once it has
been applied (the journal says so), and as not done before.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from migrate.checks import IN_PROCESS, PROOF, Check, CommandCheck
from migrate.errors import UserError
from migrate.verify.kinds import Outcome, first_line
from migrate.verify.model import CheckResult, PhaseResult, TaskResult, VerifyReport

if TYPE_CHECKING:
    from migrate.engine.context import Context
    from migrate.roadmap import Phase, Task
    from migrate.verify.hosts import CommandTimedOut

DEFAULT_TIMEOUT = 60.0  # seconds one check may take before its host counts as not answering
MAX_WORKERS = 4
_ON_HOST = frozenset(  # the kinds that run through a testinfra host of this process
    ("file", "command", "socket", "service", "process", "package", "http",
     "docker_container", "k8s_resource")
)  # fmt: skip


@dataclass(frozen=True)
class _Job:
    index: int
    task: str
    check: Check | None  # None: the check's values could not be expanded
    label: str
    kind: str
    host: str
    error: str = ""


def verify(
    ctx: Context,
    phases: list[int] | None = None,
    *,
    only: list[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> VerifyReport:
    """Run the checks of `phases` (default all; `only` these tasks) and journal the results."""
    selected = [ctx.roadmap.phase(n) for n in phases] if phases else list(ctx.roadmap.phases)
    tasks: list[tuple[Phase, Task]] = [
        (phase, task) for phase in selected for task in phase.tasks
        if only is None or task.id in only
    ]  # fmt: skip
    jobs = [_job(ctx, i, task.id, check) for i, (_, task, check) in enumerate(
        (phase, task, check) for phase, task in tasks for check in task.checks
    )]  # fmt: skip
    started, clock = datetime.now(UTC), time.monotonic()
    results = _run_all(ctx, jobs, timeout)

    by_task: dict[str, list[CheckResult]] = defaultdict(list)
    for job in jobs:
        by_task[job.task].append(results[job.index])
    states = ctx.journal.task_states() if ctx.journal else {}
    phase_results: dict[int, list[TaskResult]] = defaultdict(list)
    for phase, task in tasks:
        checks = by_task.get(task.id, [])
        note = ""
        if checks:
            done = all(c.passed for c in checks)
        else:
            state = states.get(task.id)
            done = bool(state and state.applied_at)
            note = "no checks: done once applied" if done else "no checks, and not applied yet"
        phase_results[phase.id].append(
            TaskResult(id=task.id, title=task.title, checks=checks, done=done, note=note)
        )
        if ctx.journal is not None:
            ctx.journal.mark_verified(task.id, phase.id, done)
    return VerifyReport(
        phases=[
            PhaseResult(id=p.id, name=p.name, tasks=phase_results[p.id])
            for p in selected
            if phase_results[p.id] or only is None
        ],
        started=started,
        seconds=time.monotonic() - clock,
    )


def _job(ctx: Context, index: int, task: str, check: Check) -> _Job:
    """The check with `{{ ... }}` in its values expanded."""
    try:
        raw = ctx.expand(check.model_dump(exclude_none=True))
        expanded = Check.model_validate(raw)
    except (UserError, ValueError) as exc:
        message = exc.message if isinstance(exc, UserError) else first_line(str(exc))
        return _Job(index, task, None, check.label, check.kind, check.host, message)
    return _Job(index, task, expanded, expanded.label, expanded.kind, expanded.host)


def _lane(job: _Job, timed: bool) -> tuple[str, str]:
    """(host, lane) of a job: the checks of one lane run one after another, the lanes at
    once. An `equivalence` check depends on no host and measures no time: it has a lane
    of its own (per host spec, as it is reported), beside its host's other checks, unless
    the run measures time (`timed`: a performance check), which it would disturb."""
    return (job.host, "equivalence" if job.kind == "equivalence" and not timed else "")


def _run_all(ctx: Context, jobs: list[_Job], timeout: float) -> dict[int, CheckResult]:
    groups: dict[tuple[str, str], list[_Job]] = defaultdict(list)
    timed = any(job.kind == "performance" for job in jobs)
    for job in jobs:
        groups[_lane(job, timed)].append(job)
    results: dict[int, CheckResult] = {}
    lock = threading.Lock()
    reporter = ctx.reporter

    def run_group(lane: tuple[str, str], group: list[_Job]) -> None:
        host, kind = lane
        key = f"verify {host}" + (f" {kind}" if kind else "")
        what = f"{kind} checks" if kind else "checks"
        reporter.start(key, f"{what} on {host}", total=len(group), unit="checks")
        silent = False  # the host missed a deadline: its other checks are not tried
        down = _host_down(host, group, timeout)  # once per host, before its checks
        for job in group:
            took = 0.0
            if down is not None and job.kind not in IN_PROCESS:
                outcome = Outcome(False, down, error=True)
            elif silent and job.kind not in IN_PROCESS:
                outcome = Outcome(
                    False,
                    f"not tried: {host} did not answer an earlier check in {timeout:g} s",
                    error=True,
                )
            else:
                seconds = _budget(job, timeout)
                begun = time.monotonic()
                # the check ends itself at `seconds`; the thread's bound is a guard only
                answer = _bounded(partial(_run_one, ctx, job, seconds), seconds + 5)
                took = time.monotonic() - begun
                if answer is not None and answer.silent:
                    silent = True
                if answer is None:
                    silent = silent or job.kind not in IN_PROCESS
                    where = host if job.kind not in IN_PROCESS else f"the {job.kind} check"
                    outcome = Outcome(False, f"{where} did not answer within {seconds:g} s", True)
                else:
                    outcome = answer
            result = CheckResult(
                job.label, job.kind, host, outcome.passed, outcome.message, outcome.error, took
            )
            with lock:
                results[job.index] = result
            # each result as it lands, above the progress bars: the live view of the run
            state = "pass" if result.passed else "ERROR" if result.error else "FAIL"
            reporter.info(f"{state}  {job.task}: {job.label} ({host}): {result.message}")
            reporter.advance(key)
        failed = sum(not results[j.index].passed for j in group)
        reporter.done(key, f"{host}: {len(group) - failed} of {len(group)} {what} passed")

    if groups:
        from migrate.verify.hosts import preload

        preload(list(dict.fromkeys(
            h for (h, _), g in groups.items() if any(j.kind in _ON_HOST for j in g)
        )))  # fmt: skip
        with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(groups))) as pool:
            futures = [pool.submit(run_group, lane, group) for lane, group in groups.items()]
            for future in futures:
                future.result()
    return results


def _host_down(host: str, group: list[_Job], timeout: float) -> str | None:
    """Why `host` cannot run its checks (not running, no such container, no engine, no
    answer within `timeout`), or None when it answers. Only hosts a check runs on."""
    from migrate.verify.hosts import is_local, probe

    if is_local(host) or not any(j.kind in _ON_HOST or j.kind == "testinfra" for j in group):
        return None
    box: list[str | None] = []
    thread = threading.Thread(target=lambda: box.append(probe(host, timeout)), daemon=True)
    thread.start()
    thread.join(timeout + 5)
    if not box:
        return f"{host} did not answer within {timeout:g} s"
    return box[0]


def _budget(job: _Job, timeout: float) -> float:
    """Seconds the check may take: `timeout`, or longer when the check says it waits longer
    (an event_flow's `within`)."""
    if job.check is None or job.kind not in ("event_flow", "cache_hit", *PROOF):
        return timeout
    if job.kind in PROOF:
        from migrate.verify import proof

        return max(timeout, proof.budget(job.check.params))
    from migrate.verify.behaviour import budget

    return max(timeout, budget(job.check.params))


def _bounded(work: Callable[[], Outcome], seconds: float) -> Outcome | None:
    """`work()` in a daemon thread; None when it did not finish within `seconds`
    (the thread is abandoned: it cannot keep the process from exiting)."""
    box: list[Outcome] = []
    thread = threading.Thread(target=lambda: box.append(work()), daemon=True)
    thread.start()
    thread.join(seconds)
    return box[0] if box else None


def _run_one(ctx: Context, job: _Job, timeout: float) -> Outcome:
    """One check, whose commands end within `timeout` seconds; whatever goes wrong becomes a
    failed check that says what."""
    from migrate.verify.hosts import CommandTimedOut, deadline

    if job.check is None:
        return Outcome(False, f"cannot expand the check: {job.error}")
    try:
        with deadline(timeout):
            return _run_check(ctx, job.check, timeout)
    except CommandTimedOut as exc:
        return _timed_out(job.check, exc)


def _timed_out(check: Check, exc: CommandTimedOut) -> Outcome:
    """A check whose command was killed at the deadline: an error, never a pass. A remote
    host that did not end the command itself did not answer: its later checks wait no more."""
    params = check.params
    what = f" (`{first_line(params.run, 60)}`, killed)" if isinstance(params, CommandCheck) else ""
    if not exc.answered:
        return Outcome(
            False, f"{check.host} did not answer: timed out after {exc.seconds:g} s", True, True
        )
    return Outcome(False, f"timed out after {exc.seconds:g} s{what}", error=True)


def _run_check(ctx: Context, check: Check, timeout: float) -> Outcome:
    try:
        if check.kind == "testinfra":
            from migrate.verify.modules import run_module

            return run_module(ctx.project_dir, str(check.params), check.host, timeout)
        from migrate.verify.hosts import get_host
        from migrate.verify.kinds import RUNNERS, Target

        host = None if check.kind in IN_PROCESS else get_host(check.host)
        target = Target(check.host, host, ctx.project_dir, ctx.config, timeout)
        if check.kind in ("event_flow", "cache_hit"):
            from migrate.verify import behaviour

            return behaviour.RUNNERS[check.kind](target, check.params)
        if check.kind in PROOF:
            from migrate.verify import proof

            return proof.RUNNERS[check.kind](target, check.params)
        return RUNNERS[check.kind](target, check.params)
    except UserError as exc:
        return Outcome(False, exc.message)
    except Exception as exc:
        from migrate.verify.hosts import CommandTimedOut

        if isinstance(exc, CommandTimedOut):
            raise  # _run_one says so
        return Outcome(False, _describe(check, exc), error=True)


def _describe(check: Check, exc: Exception) -> str:
    """An exception from testinfra, as a sentence: ssh's failure carries its stderr."""
    detail = exc.args[0] if exc.args else None
    stderr = getattr(detail, "stderr", None)
    if isinstance(stderr, str):
        why = first_line(stderr) or f"exit code {getattr(detail, 'rc', '?')}"
        return f"{check.host} did not answer: {why}"
    text = first_line(str(exc)) or type(exc).__name__
    if isinstance(exc, AssertionError) and "Unexpected exit code" in str(exc):
        # testinfra's run_expect: "Unexpected exit code N for CommandResult(...)" (under
        # pytest, which rewrites testinfra's asserts, more lines follow it)
        return _unexpected_exit(check, str(exc))
    return f"{check.kind} check failed on {check.host}: {type(exc).__name__}: {text}"


def _unexpected_exit(check: Check, text: str) -> str:
    """testinfra's `Unexpected exit code N for CommandResult(...)` as a sentence: the
    command it ran and its stderr, not the object's repr."""
    import re

    rc = re.search(r"Unexpected exit code (-?\d+)", text)
    code = int(rc.group(1)) if rc else -1
    stderr = re.search(r"stderr=(?:b)?(['\"])(.*?)(?<!\\)\1", text, re.DOTALL)
    command = re.search(r"command=(?:b)?(['\"])(.*?)(?<!\\)\1", text, re.DOTALL)
    why = first_line(stderr.group(2).encode().decode("unicode_escape")) if stderr else ""
    what = f" `{first_line(command.group(2), 60)}`" if command else ""
    if code == 127:
        return (
            f"{check.kind} check cannot run on {check.host}: a command it needs is missing"
            f"{what} (exit 127){': ' + why if why else ''}"
        )
    return (
        f"{check.kind} check failed on {check.host}: the command{what} exited {code}"
        f"{': ' + why if why else ''}"
    )
