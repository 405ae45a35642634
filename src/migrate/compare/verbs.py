"""`migrate compare` and `migrate bench` as functions over a project directory."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrate.compare import diff
from migrate.compare.corpus import MISSING, Case, Corpus, spread
from migrate.compare.legacy import Answer, LegacyError
from migrate.compare.loadgen import Stats
from migrate.errors import UserError
from migrate.reporting import NullReporter, Reporter

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future

    from migrate.compare.candidate import Candidate
    from migrate.engine.context import Context
    from migrate.inventory import Plugin

EXAMPLES = 3  # differing inputs shown per plugin
BENCH_INPUTS = 1000  # inputs of the corpus a bench cycles through, spread
LEGACY_LIMIT = 500_000  # calls one legacy bench may record
JOBS = 4  # plugins compare replays at once (each: two legacy processes and a container)


# --- results --------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    input: dict[str, Any]
    origin: str
    legacy: Any
    migrated: Any
    diff: list[diff.Difference]

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "origin": self.origin,
            "legacy": self.legacy,
            "migrated": self.migrated,
            "diff": [d.to_dict() for d in self.diff],
        }


@dataclass(frozen=True)
class Failure:
    input: dict[str, Any]
    origin: str
    side: str  # legacy | migrated
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "origin": self.origin,
            "side": self.side,
            "message": self.message,
        }


@dataclass
class PluginComparison:
    plugin: str
    image: str
    replayed: int = 0
    equal: int = 0
    different: int = 0
    errors: int = 0
    noise: list[str] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)  # the first errors, with messages
    differing_paths: list[str] = field(default_factory=list)
    recorded: int = 0  # inputs with a recorded output
    recorded_match: int = 0  # of those, legacy answers that still match the record
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.replayed > 0 and not self.different and not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin,
            "image": self.image,
            "ok": self.ok,
            "replayed": self.replayed,
            "equal": self.equal,
            "different": self.different,
            "errors": self.errors,
            "noise": self.noise,
            "differing_paths": self.differing_paths,
            "examples": [e.to_dict() for e in self.examples],
            "error_examples": [f.to_dict() for f in self.failures],
            "recorded": {"compared": self.recorded, "matching": self.recorded_match},
            "seconds": round(self.seconds, 3),
            "ms_per_input": round(1000 * self.seconds / self.replayed, 3) if self.replayed else 0,
        }


@dataclass(frozen=True)
class CompareResult:
    plugins: list[PluginComparison]
    corpus: str
    seconds: float

    @property
    def ok(self) -> bool:
        return bool(self.plugins) and all(p.ok for p in self.plugins)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "ok": self.ok,
            "corpus": self.corpus,
            "seconds": round(self.seconds, 3),
            "plugins": [p.to_dict() for p in self.plugins],
        }


@dataclass(frozen=True)
class PluginBench:
    plugin: str
    image: str
    legacy: Stats
    migrated: Stats
    over: list[str]  # the budgets it is over, as sentences; errors count too

    @property
    def p95_ratio(self) -> float | None:
        if self.legacy.p95_ms <= 0:
            return None
        return self.migrated.p95_ms / self.legacy.p95_ms

    @property
    def ok(self) -> bool:
        return not self.over

    def to_dict(self) -> dict[str, Any]:
        ratio = self.p95_ratio
        rps = self.migrated.rps / self.legacy.rps if self.legacy.rps else None
        return {
            "plugin": self.plugin,
            "image": self.image,
            "ok": self.ok,
            "legacy": self.legacy.to_dict(),
            "migrated": self.migrated.to_dict(),
            "p95_ratio": round(ratio, 3) if ratio is not None else None,
            "rps_ratio": round(rps, 3) if rps is not None else None,
            "over_budget": self.over,
        }


@dataclass(frozen=True)
class BenchResult:
    plugins: list[PluginBench]
    concurrency: int
    duration: float
    budgets: dict[str, float | None]

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.plugins)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "ok": self.ok,
            "concurrency": self.concurrency,
            "duration": self.duration,
            "budgets": self.budgets,
            "plugins": [p.to_dict() for p in self.plugins],
        }


# --- shared ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Setup:
    ctx: Context
    corpus: Corpus
    plugins: list[Plugin]
    images: dict[str, str]


def _setup(
    project_dir: Path,
    plugins: Sequence[str] | None,
    inputs: Path | None,
    reporter: Reporter,
) -> _Setup:
    from migrate.compare import corpus as corpora
    from migrate.images import engine
    from migrate.images.targets import plan_targets
    from migrate.project import open_context

    ctx = open_context(project_dir, reporter)
    inventory = ctx.inventory
    known = [p.name for p in inventory.plugins]
    for name in plugins or []:
        if name not in known:
            raise UserError(
                f"--plugin {name}: no such plugin in the application",
                hint=f"plugins: {', '.join(known) or 'none'}",
            )
    corpus = corpora.load(project_dir, ctx.config.replay, inventory, inputs, reporter)
    if plugins:
        selected = [inventory.plugin(name) for name in dict.fromkeys(plugins)]
        for plugin in selected:
            if not corpus.cases.get(plugin.name):
                raise UserError(
                    f"the replay corpus ({corpus.source}) holds no invocation of plugin "
                    f"{plugin.name!r}",
                    key="replay" if inputs is None else None,
                    hint="record some, or leave that --plugin out",
                )
    else:
        selected = [p for p in inventory.plugins if corpus.cases.get(p.name)]
        for plugin in inventory.plugins:
            if not corpus.cases.get(plugin.name):
                reporter.warn(f"no recorded invocation of plugin {plugin.name}: not replayed")
    targets = {t.plugin.name: t for t in plan_targets(ctx, selected) if t.plugin is not None}
    images: dict[str, str] = {}
    for plugin in selected:
        target = targets[plugin.name]
        if target.error is not None:
            raise target.error
        images[plugin.name] = target.image
    present = engine.which_exist(images.values())  # one question for all of them
    missing = [f"{name} ({image})" for name, image in images.items() if not present[image]]
    if missing:
        raise UserError(
            f"no image of the present code of: {', '.join(missing)}",
            hint="build them first: `migrate images build"
            + "".join(f" --plugin {p}" for p in (plugins or []))
            + "`",
        )
    return _Setup(ctx, corpus, selected, images)


@contextlib.contextmanager
def _ticking(reporter: Reporter, key: str, seconds: float) -> Iterator[None]:
    """Advance `key` by the seconds that pass while the block runs (a progress bar over
    work that reports nothing itself)."""
    stop = threading.Event()

    def tick() -> None:
        last = time.monotonic()
        shown = 0.0
        while not stop.wait(0.25) and shown < seconds:
            now = time.monotonic()
            step = min(now - last, seconds - shown)
            reporter.advance(key, step)
            shown += step
            last = now

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(1.0)


def _labels(extra: dict[str, str] | None) -> dict[str, str]:
    return dict(extra or {})


# --- compare --------------------------------------------------------------------------


def compare(
    project_dir: Path,
    plugins: Sequence[str] | None = None,
    *,
    sample: int | None = None,
    inputs: Path | None = None,
    reporter: Reporter | None = None,
    labels: dict[str, str] | None = None,
    jobs: int | None = None,
) -> CompareResult:
    """Replay the corpus (per plugin, `sample` inputs spread over it) through the legacy
    code twice and the plugin's image once; see the package's docstring.

    Every plugin's container is started at once; the plugins are replayed `jobs` at a
    time (default `JOBS`), each with its own legacy processes; the results are in the
    plugins' order. Each input goes to the three sides at once, and the next only once
    all three answered: each side sees the inputs in the corpus's order, as close
    together in time as one call. Every container is removed before this returns or
    raises."""
    import concurrent.futures
    from concurrent.futures import ThreadPoolExecutor

    from migrate.compare import candidate
    from migrate.images import engine

    reporter = reporter or NullReporter()
    started = time.monotonic()
    setup = _setup(project_dir, plugins, inputs, reporter)
    ignored = _ignored(setup.ctx, inputs)
    workers = max(1, min(jobs or JOBS, len(setup.plugins)))
    client = engine.connect()
    # starts every container, and removes each once its plugin is replayed
    docker = ThreadPoolExecutor(max(1, len(setup.plugins)), thread_name_prefix="compare-docker")
    containers = [
        docker.submit(
            candidate.start, client, setup.images[plugin.name], plugin.name,
            setup.ctx.config.project, _labels(labels),
        )
        for plugin in setup.plugins
    ]  # fmt: skip
    replay = _Replay(setup, ignored, sample, reporter, docker)
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="compare") as pool:
            futures = [
                pool.submit(replay.one, plugin, container)
                for plugin, container in zip(setup.plugins, containers, strict=True)
            ]
            try:
                concurrent.futures.wait(futures)
            except BaseException:  # Ctrl-C: the replays under way stop at their next input
                replay.stop.set()
                raise
            failures = [e for e in (f.exception() for f in futures) if e is not None]
            if failures:  # the first that is a cause, not "stopped: another one failed"
                raise next((e for e in failures if not isinstance(e, _Stopped)), failures[0])
            results = [future.result() for future in futures]
    except LegacyError as exc:
        raise UserError(str(exc), hint="fix the plugin's legacy environment") from None
    finally:
        docker.shutdown(wait=True, cancel_futures=True)
        for container in containers:  # what no replay removed (a failure, Ctrl-C)
            if container.done() and not container.cancelled() and not container.exception():
                container.result().remove()
        client.close()
    return CompareResult(results, setup.corpus.source, time.monotonic() - started)


class _Stopped(LegacyError):
    """A replay not made, or cut short, because another plugin's failed."""


@dataclass
class _Replay:
    setup: _Setup
    ignored: list[diff.Path]
    sample: int | None
    reporter: Reporter
    docker: Executor
    stop: threading.Event = field(default_factory=threading.Event)  # a plugin failed

    def one(self, plugin: Plugin, started: Future[Candidate]) -> PluginComparison:
        """One plugin's comparison: its sample through both legacy processes and its
        container; the container is removed after (by the docker pool, when it takes more)."""
        try:
            if self.stop.is_set():
                raise _Stopped(f"plugin {plugin.name!r}: not replayed, another plugin failed")
            container = started.result()
            try:
                return self._compare(plugin, container)
            finally:
                try:
                    self.docker.submit(container.remove)
                except RuntimeError:  # the pool is shut down: remove it here
                    container.remove()
        except BaseException:
            self.stop.set()
            raise

    def _compare(self, plugin: Plugin, container: Candidate) -> PluginComparison:
        from migrate.compare.legacy import LegacyProcess, venv_for

        setup, reporter = self.setup, self.reporter
        cases = spread(setup.corpus.cases[plugin.name], self.sample)
        result = PluginComparison(plugin.name, container.image)
        key = f"compare {plugin.name}"
        reporter.start(key, f"replaying {plugin.name}", total=len(cases), unit="inputs")
        began = time.monotonic()
        python = venv_for(plugin, setup.ctx.state_dir)
        with contextlib.ExitStack() as stack:
            # both legacy processes import the plugin while the container boots
            primary = stack.enter_context(LegacyProcess(plugin, python, "primary", wait=False))
            secondary = stack.enter_context(LegacyProcess(plugin, python, "secondary", wait=False))
            primary.wait_ready()
            secondary.wait_ready()
            container.ready()
            answers = []
            for case in cases:  # the three sides work on the same input at once
                if self.stop.is_set():  # another plugin failed, or Ctrl-C
                    raise _Stopped(f"plugin {plugin.name!r}: stopped, another plugin failed")
                primary.send(case.input)
                secondary.send(case.input)
                migrated = container.invoke(case.input)
                answers.append((case, primary.receive(), secondary.receive(), migrated))
                reporter.advance(key)
        _judge(result, answers, self.ignored)
        result.seconds = time.monotonic() - began
        reporter.done(key, _summary(result))
        return result


def _ignored(ctx: Context, inputs: Path | None) -> list[diff.Path]:
    from migrate.config import CONFIG_FILE

    patterns = []
    replay = ctx.config.replay
    for index, text in enumerate(replay.ignore if replay else []):
        try:
            patterns.append(diff.parse(text))
        except ValueError as exc:
            raise UserError(
                str(exc), file=ctx.project_dir / CONFIG_FILE, key=f"replay.ignore[{index}]"
            ) from None
    return patterns


def _judge(
    result: PluginComparison,
    answers: list[tuple[Case, Answer, Answer, Answer]],
    ignored: list[diff.Path],
) -> None:
    """Count equal, different and errors: noise first (over every input), then the rest."""
    noise: set[diff.Path] = set()
    for _, primary, secondary, _ in answers:
        noise |= diff.noise(primary.value, secondary.value)
    result.noise = sorted(diff.render(p) for p in noise if p)
    skip = [*ignored, *noise]
    paths: dict[str, int] = {}
    for case, primary, _secondary, migrated in answers:
        result.replayed += 1
        if case.recorded is not MISSING and case.recorded is not None and primary.ok:
            result.recorded += 1
            result.recorded_match += diff.contains(case.recorded, primary.output, skip)
        if not primary.ok and not (migrated.ok or migrated.error == primary.error):
            _error(result, case, "legacy", primary.error)
            continue
        if not migrated.ok and primary.ok:
            _error(result, case, "migrated", migrated.error)
            continue
        found = diff.beyond(diff.differences(primary.value, migrated.value), skip)
        if not found:
            result.equal += 1
            continue
        result.different += 1
        for difference in found:
            text = diff.render(diff.general(difference.path))
            paths[text] = paths.get(text, 0) + 1
        if len(result.examples) < EXAMPLES:
            result.examples.append(
                Example(case.input, case.origin, primary.value, migrated.value, found)
            )
    result.differing_paths = sorted(paths, key=lambda p: (-paths[p], p))


def _error(result: PluginComparison, case: Case, side: str, message: str) -> None:
    result.errors += 1
    if len(result.failures) < EXAMPLES:
        result.failures.append(Failure(case.input, case.origin, side, message))


def _summary(result: PluginComparison) -> str:
    state = "equal" if result.ok else "DIFFERENT" if result.different else "ERRORS"
    return (
        f"{result.plugin}: {state}: {result.equal} of {result.replayed} equal, "
        f"{result.different} different, {result.errors} errors"
    )


# --- bench ----------------------------------------------------------------------------


def bench(
    project_dir: Path,
    plugins: Sequence[str] | None = None,
    *,
    concurrency: int = 4,
    duration: float = 5.0,
    inputs: Path | None = None,
    p95_ms: float | None = None,
    max_p95_ratio: float | None = None,
    reporter: Reporter | None = None,
    labels: dict[str, str] | None = None,
) -> BenchResult:
    """Replay the corpus at `concurrency` for `duration` seconds against the legacy code
    in-process (the baseline) and against the plugin's container; budgets: the arguments,
    else `performance:` in migrate.yaml."""
    from migrate.compare import candidate, loadgen
    from migrate.compare.legacy import LegacyProcess, venv_for
    from migrate.images import engine

    if concurrency < 1 or not 0 < duration <= 3600:
        raise UserError(
            "bench needs a concurrency of at least 1 and a duration of 0 to 3600 seconds"
        )
    reporter = reporter or NullReporter()
    setup = _setup(project_dir, plugins, inputs, reporter)
    budgets = setup.ctx.config.performance
    p95_budget = p95_ms if p95_ms is not None else budgets.p95_ms
    ratio_budget = max_p95_ratio if max_p95_ratio is not None else budgets.max_p95_ratio
    results = []
    client = engine.connect()
    try:
        for plugin in setup.plugins:
            payloads = [c.input for c in spread(setup.corpus.cases[plugin.name], BENCH_INPUTS)]
            image = setup.images[plugin.name]
            python = venv_for(plugin, setup.ctx.state_dir)
            key = f"bench {plugin.name}"
            reporter.start(key, f"bench {plugin.name}", total=2 * duration, unit="seconds")
            with (
                LegacyProcess(plugin, python, "baseline") as legacy,
                _ticking(reporter, key, duration),
            ):
                raw = legacy.bench(payloads, concurrency, duration, LEGACY_LIMIT)
            baseline = loadgen.summarize(
                raw.get("latencies_ms") or [], int(raw.get("errors") or 0),
                float(raw.get("elapsed") or duration),
            )  # fmt: skip
            with candidate.running(
                client, image, plugin.name, setup.ctx.config.project, _labels(labels)
            ) as container:
                if container.problem:
                    migrated = Stats(0, 1, duration, 0, 0, 0, (), container.problem)
                else:
                    migrated = loadgen.run(
                        container.port,
                        payloads,
                        concurrency=concurrency,
                        duration=duration,
                        tick=partial(reporter.advance, key),
                    )
            over = _over(baseline, migrated, p95_budget, ratio_budget)
            entry = PluginBench(plugin.name, image, baseline, migrated, over)
            reporter.done(key, _bench_summary(entry))
            results.append(entry)
    except LegacyError as exc:
        raise UserError(str(exc), hint="fix the plugin's legacy environment") from None
    finally:
        client.close()
    result = BenchResult(
        results,
        concurrency,
        duration,
        {"p95_ms": p95_budget, "max_p95_ratio": ratio_budget},
    )
    from migrate.report import latency

    curves = {
        p.plugin: {"legacy": list(p.legacy.curve_ms), "migrated": list(p.migrated.curve_ms)}
        for p in results
    }
    latency.record(setup.ctx.state_dir, result.to_dict(), curves)  # for `migrate report`
    return result


def _over(
    legacy: Stats, migrated: Stats, p95_ms: float | None, max_ratio: float | None
) -> list[str]:
    over = []
    if migrated.errors:
        first = f" (first: {migrated.first_error})" if migrated.first_error else ""
        over.append(f"{migrated.errors} of {migrated.count} requests failed{first}")
    if legacy.errors:
        over.append(f"the legacy code failed {legacy.errors} of {legacy.count} calls")
    if p95_ms is not None and migrated.p95_ms > p95_ms:
        over.append(f"p95 {migrated.p95_ms:.2f} ms is over the budget of {p95_ms:g} ms")
    if max_ratio is not None and legacy.p95_ms > 0:
        ratio = migrated.p95_ms / legacy.p95_ms
        if ratio > max_ratio:
            over.append(f"p95 ratio {ratio:.2f} is over the budget of {max_ratio:g}")
    return over


def _bench_summary(entry: PluginBench) -> str:
    ratio = entry.p95_ratio
    return (
        f"{entry.plugin}: legacy {entry.legacy.rps:.0f} req/s p95 {entry.legacy.p95_ms:.2f} ms; "
        f"migrated {entry.migrated.rps:.0f} req/s p95 {entry.migrated.p95_ms:.2f} ms"
        + (f"; p95 ratio {ratio:.1f}" if ratio is not None else "")
        + ("" if entry.ok else f"; OVER: {'; '.join(entry.over)}")
    )
