"""The verbs of `migrate` as typed functions: what the CLI and tests call.

Every function takes the project directory first and returns data; none
prints. Errors are `MigrateError`s with a message a person can act on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from migrate.manifests.verbs import DEFAULT_RENDER_DIR as DEFAULT_RENDER_DIR
from migrate.manifests.verbs import RenderResult as RenderResult
from migrate.reporting import Reporter

if TYPE_CHECKING:
    from migrate.data.loader import LoadResult
    from migrate.data.rollback import DataRollbackResult
    from migrate.data.verify import VerifyResult
    from migrate.engine.executor import RollbackResult
    from migrate.engine.plan import Plan
    from migrate.engine.run import ApplyResult as ApplyResult
    from migrate.engine.run import Confirm as Confirm
    from migrate.engine.status import PhaseStatus as PhaseStatus
    from migrate.engine.status import Status as Status
    from migrate.engine.status import TaskStatus as TaskStatus
    from migrate.scaffold import InitResult as InitResult
    from migrate.verify.model import VerifyReport
    from migrate.verify.verbs import CiResult as CiResult


#: the result types named here, imported when first asked for (`plan` needs none of them)
_LAZY = {
    "ApplyResult": "migrate.engine.run",
    "Confirm": "migrate.engine.run",
    "PhaseStatus": "migrate.engine.status",
    "Status": "migrate.engine.status",
    "TaskStatus": "migrate.engine.status",
    "InitResult": "migrate.scaffold",
    "CiResult": "migrate.verify.verbs",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


# --- init -----------------------------------------------------------------------------


def init(
    project_dir: Path,
    source: Path | None = None,
    *,
    name: str | None = None,
    force: bool = False,
) -> InitResult:
    """Scaffold `migrate.yaml` and `phases/roadmap.yaml` for the application at `source`."""
    from migrate import scaffold

    return scaffold.init(project_dir, source, name=name, force=force)


# --- plan -----------------------------------------------------------------------------


def plan(
    project_dir: Path,
    phase: int | None = None,
    *,
    only: list[str] | None = None,
    reporter: Reporter | None = None,
    checks: bool = True,
    skip_checks: tuple[str, ...] | list[str] = (),
) -> Plan:
    """What `apply` would change, per phase and task. Changes nothing.

    With `checks`, the plan carries the whole-set checks (migrate.manifests.lint) of
    every phase's rendered manifests, reported for `phase` when one is given.
    """
    from migrate.engine.plan import build_plan
    from migrate.manifests import verbs
    from migrate.project import open_context

    ctx = open_context(project_dir, reporter)
    the_plan = build_plan(ctx, [phase] if phase else None, only)
    return verbs.with_checks(ctx, the_plan, phase, skip_checks) if checks else the_plan


# --- apply ----------------------------------------------------------------------------


def apply(
    project_dir: Path,
    phase: int,
    *,
    only: list[str] | None = None,
    force: bool = False,
    confirm: Confirm | None = None,
    reporter: Reporter | None = None,
    jobs: int | None = None,
) -> ApplyResult:
    """Apply phase `phase` (or the `only` tasks of it), holding the project lock.

    `confirm` sees the plan and returns whether to go on (None: go on). `jobs`: how
    many independent changes of a task (e.g. image builds) run at once (None: default).
    Refuses while phase `phase - 1` is not done, unless `force`.
    """
    from migrate.engine import run
    from migrate.engine.plan import check_only
    from migrate.project import open_context
    from migrate.state.lock import ProjectLock

    ctx = open_context(project_dir, reporter, journal=True)
    check_only(ctx.roadmap, [ctx.roadmap.phase(phase)], only)  # before the lock, and before
    # "phase N-1 is not done": an unknown phase or a task of another phase is the mistake
    with ProjectLock(ctx.state_dir, f"apply --phase {phase}"):
        return run.apply_phase(ctx, phase, only=only, force=force, confirm=confirm, jobs=jobs)


# --- rollback -------------------------------------------------------------------------


def rollback(
    project_dir: Path,
    phase: int | None = None,
    *,
    force: bool = False,
    confirm: Callable[[int, list[str]], bool] | None = None,
    reporter: Reporter | None = None,
) -> RollbackResult | None:
    """Undo the journaled changes of `phase` (default: the last applied phase).

    Returns None when `confirm` declined. Refuses while a later phase is
    applied, unless `force`.
    """
    from migrate.engine import run
    from migrate.project import open_context
    from migrate.state.lock import ProjectLock

    ctx = open_context(project_dir, reporter, journal=True)
    with ProjectLock(ctx.state_dir, "rollback"):
        return run.rollback(ctx, phase, force=force, confirm=confirm)


# --- status ---------------------------------------------------------------------------


def status(project_dir: Path) -> Status:
    """Phases and tasks: done (verified) or not, and when each was last applied."""
    from migrate.engine.status import status as of_project
    from migrate.project import open_context

    return of_project(open_context(project_dir))


# --- data -----------------------------------------------------------------------------


def data_load(
    project_dir: Path,
    datasets: list[str] | None = None,
    *,
    database_url: str | None = None,
    reporter: Reporter | None = None,
    workers: int | None = None,
) -> LoadResult:
    """Load the datasets (default all) into `<target.schema>.<table>`, holding the
    project lock; unchanged files are skipped, changed ones replaced. `workers`: files
    loaded at once (default `data.loader.WORKERS`)."""
    from migrate.data import verbs

    return verbs.load(
        project_dir, datasets, database_url=database_url, reporter=reporter, workers=workers
    )


def data_verify(
    project_dir: Path,
    datasets: list[str] | None = None,
    *,
    database_url: str | None = None,
    reporter: Reporter | None = None,
) -> VerifyResult:
    """Compare the source files with the database: keys, documents, rejects, hashes."""
    from migrate.data import verbs

    return verbs.verify(project_dir, datasets, database_url=database_url, reporter=reporter)


def data_rollback(
    project_dir: Path,
    datasets: list[str] | None = None,
    *,
    database_url: str | None = None,
    confirm: Callable[[list[str]], bool] | None = None,
    reporter: Reporter | None = None,
) -> DataRollbackResult | None:
    """Drop what `data load` created (all, or the `datasets`); None when not confirmed."""
    from migrate.data import verbs

    return verbs.rollback(
        project_dir, datasets, database_url=database_url, confirm=confirm, reporter=reporter
    )


# --- images (DESIGN 3.7): thin wrappers over migrate.images.verbs ---------------------

if TYPE_CHECKING:
    from migrate.images.verbs import BuildResult, ImageList
    from migrate.images.verbs import RollbackResult as ImagesRollbackResult


def images_build(
    project_dir: Path,
    plugins: list[str] | None = None,
    *,
    orchestrator: bool | None = None,
    push: bool = False,
    jobs: int | None = None,
    reporter: Reporter | None = None,
) -> BuildResult:
    """Build each plugin's image and the orchestrator's unless the engine has its tag;
    push with `push`. `plugins` and `orchestrator=True` select (with neither: every
    image); `orchestrator=False` leaves the orchestrator out.

    An image that fails is reported in the result (with its build log) while the
    others still build: check `result.failures` / `result.error()`.
    """
    from migrate.images import verbs

    return verbs.build(
        project_dir, plugins, orchestrator=orchestrator, push=push, jobs=jobs, reporter=reporter
    )


def images_list(
    project_dir: Path, plugins: list[str] | None = None, *, orchestrator: bool | None = None
) -> ImageList:
    """The project's images in the Docker engine (selected as in `images_build`)."""
    from migrate.images import verbs

    return verbs.list_images(project_dir, plugins, orchestrator=orchestrator)


def images_rollback(
    project_dir: Path,
    plugins: list[str] | None = None,
    *,
    orchestrator: bool | None = None,
    reporter: Reporter | None = None,
) -> ImagesRollbackResult:
    """Remove the image tags that `images build` created (and only those)."""
    from migrate.images import verbs

    return verbs.rollback(project_dir, plugins, orchestrator=orchestrator, reporter=reporter)


# --- dev (issue 10): thin wrappers over migrate.dev.verbs -----------------------------

if TYPE_CHECKING:
    from migrate.dev.verbs import DownResult, StatusResult, UpResult


def dev_up(
    project_dir: Path,
    *,
    network: str | None = None,
    bus_url: str | None = None,
    database_url: str | None = None,
    plugins: list[str] | None = None,
    pull: bool = False,
    timeout: float | None = None,
    reporter: Reporter | None = None,
) -> UpResult:
    """Run the migrated system on the local Docker engine and wait until it is ready."""
    from migrate.dev import verbs

    return verbs.up(
        project_dir,
        network=network,
        bus_url=bus_url,
        database_url=database_url,
        plugins=plugins,
        pull=pull,
        timeout=timeout if timeout is not None else verbs.DEFAULT_TIMEOUT,
        reporter=reporter,
    )


def dev_status(project_dir: Path, *, reporter: Reporter | None = None) -> StatusResult:
    """The dev containers, their readiness, consumer lag and dead letters."""
    from migrate.dev import verbs

    return verbs.status(project_dir, reporter=reporter)


def dev_down(project_dir: Path, *, reporter: Reporter | None = None) -> DownResult:
    """Remove the dev containers (by the project's label) and `.migrate/dev.json`."""
    from migrate.dev import verbs

    return verbs.down(project_dir, reporter=reporter)


# --- compare and bench (issue 11): thin wrappers over migrate.compare.verbs ------------

if TYPE_CHECKING:
    from migrate.compare.verbs import BenchResult, CompareResult


def compare(
    project_dir: Path,
    plugins: list[str] | None = None,
    *,
    sample: int | None = None,
    inputs: Path | None = None,
    reporter: Reporter | None = None,
) -> CompareResult:
    """Replay recorded inputs through the legacy code (twice) and each plugin's image;
    what differs beyond the noise is a difference (`result.ok` is False)."""
    from migrate.compare import verbs

    return verbs.compare(project_dir, plugins, sample=sample, inputs=inputs, reporter=reporter)


def bench(
    project_dir: Path,
    plugins: list[str] | None = None,
    *,
    concurrency: int = 4,
    duration: float = 5.0,
    inputs: Path | None = None,
    reporter: Reporter | None = None,
) -> BenchResult:
    """Latency and throughput of the legacy code in-process and of each plugin's container,
    against the budgets of `performance:` in migrate.yaml (`result.ok`)."""
    from migrate.compare import verbs

    return verbs.bench(
        project_dir,
        plugins,
        concurrency=concurrency,
        duration=duration,
        inputs=inputs,
        reporter=reporter,
    )


# --- manifests and infra (issue 5): thin wrappers over migrate.manifests, migrate.infra --

if TYPE_CHECKING:
    from migrate.infra.verbs import InfraResult, InfraVerb


def render(
    project_dir: Path,
    phase: int | None = None,
    *,
    out: Path | None = None,
    diagram: bool = False,
    minimum_failure_severity: str = "error",
    skip_checks: tuple[str, ...] | list[str] = (),
) -> RenderResult:
    """Render, validate and write the manifests of each phase to `out/phase-N/`.

    Needs no cluster and no Pulumi. `out` defaults to `manifests/` in the
    project; `diagram` also writes `out/architecture.md` (Mermaid). After the
    schemas, the whole-set checks (migrate.manifests.lint) run over every phase
    (the findings reported are those of `phase` when one is given); findings at
    `minimum_failure_severity` or above raise `LintFailed` and nothing is written.
    """
    from migrate.manifests import verbs

    return verbs.render(
        project_dir,
        phase,
        out=out,
        diagram=diagram,
        minimum_failure_severity=minimum_failure_severity,
        skip_checks=skip_checks,
    )


def infra(
    project_dir: Path,
    verb: InfraVerb,
    phase: int,
    *,
    confirm: Callable[[], bool] | None = None,
    reporter: Reporter | None = None,
) -> InfraResult | None:
    """`preview`, `up`, `destroy` or `cancel` the Pulumi stack of `phase`.

    `up` goes through the executor and the journal like `apply` of the phase's
    `manifests`/`infra` tasks, so `migrate rollback` undoes it; with nothing
    changed it only reconciles drift (`up --refresh` of the recorded set).
    `destroy` exports the state first, and journals that the phase's
    provisioning steps are gone. Raises a `UserError` saying how to fix it
    when the Pulumi CLI or the cluster is not there (checked before `confirm`
    is asked); None when `confirm` declined.
    """
    from migrate.infra import verbs

    return verbs.run(project_dir, verb, phase, confirm=confirm, reporter=reporter)


# --- verify, ci, report (issue 6): thin wrappers over migrate.verify, migrate.report --


def verify(
    project_dir: Path,
    phase: int | None = None,
    *,
    junit_xml: Path | None = None,
    timeout: float | None = None,
    reporter: Reporter | None = None,
) -> VerifyReport:
    """Run every check of the phase's tasks (default all phases) through testinfra and
    record in the journal which tasks are done; `junit_xml` also writes a JUnit report."""
    from migrate.verify import verbs

    return verbs.verify(project_dir, phase, junit_xml=junit_xml, timeout=timeout, reporter=reporter)


def ci(
    project_dir: Path,
    phase: int | None = None,
    *,
    plan_json: Path | None = None,
    junit_xml: Path | None = None,
    timeout: float | None = None,
    reporter: Reporter | None = None,
) -> CiResult:
    """The pipeline step: validate the roadmap, plan, run the checks, write the reports.

    Never asks anything. Errors raise as everywhere (the CLI exits 1).
    """
    from migrate.verify import verbs

    return verbs.ci(
        project_dir,
        phase,
        plan_json=plan_json,
        junit_xml=junit_xml,
        timeout=timeout,
        reporter=reporter,
    )


def report(project_dir: Path, *, fmt: Literal["markdown", "html"] = "markdown") -> str:
    """The Architecture Blueprint with every task ticked from its verified status."""
    from migrate.project import open_context
    from migrate.report import blueprint

    return blueprint.render(open_context(project_dir), fmt)
