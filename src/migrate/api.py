"""The verbs of `migrate` as typed functions: what the CLI and tests call.

Every function takes the project directory first and returns data; none
prints. Errors are `MigrateError`s with a message a person can act on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from migrate.errors import RefusedError, UserError
from migrate.reporting import Reporter

if TYPE_CHECKING:
    from migrate.data.loader import LoadResult
    from migrate.data.rollback import DataRollbackResult
    from migrate.data.verify import VerifyResult
    from migrate.engine.executor import RollbackResult, RunResult
    from migrate.engine.plan import Plan
    from migrate.inventory import Inventory
    from migrate.verify.model import VerifyReport

Confirm = Callable[["Plan"], bool]


# --- init -----------------------------------------------------------------------------


@dataclass(frozen=True)
class InitResult:
    config_path: Path
    roadmap_path: Path
    inventory: Inventory
    written: list[Path] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "config": str(self.config_path),
            "roadmap": str(self.roadmap_path),
            "plugins": [
                {"name": p.name, "version": p.version, "entrypoint": p.entrypoint}
                for p in self.inventory.plugins
            ],
            "datasets": [
                {"name": d.name, "files": len(d.files), "formats": d.formats, "bytes": d.size}
                for d in self.inventory.datasets
            ],
            "warnings": list(self.inventory.warnings),
        }


def _project_name(directory: Path) -> str:
    name = re.sub(r"[^a-z0-9]+", "-", directory.resolve().name.lower()).strip("-")[:63]
    return name.strip("-") or "app"


def init(
    project_dir: Path,
    source: Path | None = None,
    *,
    name: str | None = None,
    force: bool = False,
) -> InitResult:
    """Scaffold `migrate.yaml` and `phases/roadmap.yaml` for the application at `source`."""
    import shutil

    import yaml
    from pydantic import ValidationError

    from migrate.config import CONFIG_FILE, Config
    from migrate.errors import InventoryError
    from migrate.inventory import scan
    from migrate.roadmap import default_roadmap_path

    project_dir.mkdir(parents=True, exist_ok=True)
    if source is None:
        if (project_dir / "plugins").is_dir() or (project_dir / "data").is_dir():
            source = Path(".")
        else:
            raise UserError(
                f"no legacy application in {project_dir}",
                hint="name it: `migrate init --source PATH/TO/APP` (a directory with plugins/ "
                "and data/)",
            )
    given_absolute = source.is_absolute()
    given = source
    source = source if given_absolute else project_dir / source
    if not given_absolute and not source.is_dir():
        raise InventoryError(
            f"the source application {given} does not exist in {project_dir}",
            hint=f"a relative --source is taken relative to the project directory "
            f"(-C {project_dir}), like git -C: give a path from there, or an absolute path",
        )
    inventory = scan(source)

    config_path = project_dir / CONFIG_FILE
    roadmap_path = project_dir / "phases" / "roadmap.yaml"
    for path in (config_path, roadmap_path):
        if path.exists() and not force:
            raise RefusedError(
                f"{path} already exists",
                hint="keep it, or pass --force to overwrite it",
            )
    project = name or _project_name(project_dir)
    # stored as given: absolute stays absolute, relative is relative to the project
    source_rel = (
        str(source.resolve())
        if given_absolute
        else os.path.relpath(source.resolve(), project_dir.resolve())
    )
    data = {
        "project": project,
        "source": {"path": source_rel},
        "roadmap": "phases/roadmap.yaml",
        "target": {"namespace": project, "schema": "legacy"},
    }
    from migrate.compare.corpus import propose

    replay = propose(inventory)  # recorded invocations: the corpus of `migrate compare`
    if replay is not None:
        data["replay"] = replay
    try:  # a bad --name fails here, before anything is written
        Config.model_validate(data)
    except ValidationError as exc:
        reason = str(exc.errors(include_url=False)[0]["msg"]).removeprefix("Value error, ")
        raise UserError(
            f"{project!r} cannot be the project name: {reason}",
            hint="pass --name with lower-case letters, digits and '-', e.g. --name acme-agents",
        ) from None
    header = (
        "# migrate project config: see docs/config.md for every key.\n"
        "# target.database_url is optional: without it (and without --database-url or\n"
        "# MIGRATE_DATABASE_URL) an embedded PostgreSQL under .migrate/postgres is used.\n"
    )
    body = yaml.safe_dump(data, sort_keys=False)
    config_path.write_text(header + body, encoding="utf-8")
    roadmap_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(default_roadmap_path(), roadmap_path)
    from migrate.infra.stack import ignore_state_dir

    ignore_state_dir(project_dir)  # .migrate/: state, backups, the Pulumi passphrase
    return InitResult(
        config_path=config_path,
        roadmap_path=roadmap_path,
        inventory=inventory,
        written=[config_path, roadmap_path],
    )


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
    import dataclasses

    from migrate.engine.plan import build_plan
    from migrate.project import open_context

    ctx = open_context(project_dir, reporter)
    the_plan = build_plan(ctx, [phase] if phase else None, only)
    if not checks:
        return the_plan
    from migrate.manifests import lint

    report = lint.check(lint.rendered_set(ctx), skip_checks)
    return dataclasses.replace(the_plan, lint=report.for_phases([phase] if phase else None))


# --- apply ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ApplyResult:
    plan: Plan
    run: RunResult | None  # None: nothing to do, or not confirmed
    confirmed: bool
    checks: VerifyReport | None = None  # the phase's checks, run after applying
    # (tasks done, tasks) of the whole phase after applying: with --only, the checks
    # above are those of some of its tasks only
    progress: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "plan": self.plan.to_dict(),
            "confirmed": self.confirmed,
            "tasks": self.run.to_dict()["tasks"] if self.run else [],
            "checks": self.checks.to_dict() if self.checks else None,
            "phase_progress": (
                {"done": self.progress[0], "tasks": self.progress[1]} if self.progress else None
            ),
        }


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
    from migrate.engine import gate
    from migrate.engine.executor import apply_plan, settle
    from migrate.engine.plan import build_plan, check_only
    from migrate.project import open_context
    from migrate.state.lock import ProjectLock
    from migrate.verify.runner import verify as run_checks

    ctx = open_context(project_dir, reporter, journal=True)
    check_only(ctx.roadmap, [ctx.roadmap.phase(phase)], only)  # before the lock, and before
    # "phase N-1 is not done": an unknown phase or a task of another phase is the mistake
    with ProjectLock(ctx.state_dir, f"apply --phase {phase}"):
        if not force:
            gate.require_done(ctx, phase)
        the_plan = build_plan(ctx, [phase], only)
        gate.preflight(ctx, the_plan)
        if not the_plan.has_changes:
            settle(ctx, the_plan)  # applied, with nothing to change
            run = None
        elif confirm is not None and not confirm(the_plan):
            return ApplyResult(plan=the_plan, run=None, confirmed=False)
        else:
            run = apply_plan(ctx, the_plan, jobs=jobs)
        checks = run_checks(ctx, [phase], only=only)  # what the apply achieved
        progress = gate.progress(ctx, phase)
        assert ctx.journal is not None  # opened with journal=True
        ctx.journal.check_identity()  # the journal this run recorded in is still there
    return ApplyResult(plan=the_plan, run=run, confirmed=True, checks=checks, progress=progress)


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
    from migrate.engine import gate
    from migrate.engine.executor import rollback_phase
    from migrate.project import open_context
    from migrate.state.lock import ProjectLock

    ctx = open_context(project_dir, reporter, journal=True)
    with ProjectLock(ctx.state_dir, "rollback"):
        phase, descriptions = gate.rollback_target(ctx, phase, force)
        if confirm is not None and not confirm(phase, descriptions):
            return None
        return rollback_phase(ctx, phase)


# --- status ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskStatus:
    id: str
    title: str
    action: str
    done: bool
    last_applied: str | None
    last_verified: str | None


@dataclass(frozen=True)
class PhaseStatus:
    id: int
    name: str
    tasks: list[TaskStatus]

    @property
    def done(self) -> bool:
        return all(t.done for t in self.tasks)


@dataclass(frozen=True)
class Status:
    project: str
    phases: list[PhaseStatus]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "project": self.project,
            "phases": [
                {
                    "id": p.id,
                    "name": p.name,
                    "done": p.done,
                    "tasks": [
                        {
                            "id": t.id,
                            "title": t.title,
                            "action": t.action,
                            "done": t.done,
                            "last_applied": t.last_applied,
                            "last_verified": t.last_verified,
                        }
                        for t in p.tasks
                    ],
                }
                for p in self.phases
            ],
        }


def status(project_dir: Path) -> Status:
    """Phases and tasks: done (verified) or not, and when each was last applied."""
    from migrate.project import open_context

    ctx = open_context(project_dir)
    states = ctx.journal.task_states() if ctx.journal else {}
    phases = []
    for phase in ctx.roadmap.phases:
        tasks = []
        for task in phase.tasks:
            state = states.get(task.id)
            tasks.append(
                TaskStatus(
                    id=task.id,
                    title=task.title,
                    action=task.action,
                    done=bool(state and state.done),
                    last_applied=state.applied_at if state else None,
                    last_verified=state.verified_at if state else None,
                )
            )
        phases.append(PhaseStatus(id=phase.id, name=phase.name, tasks=tasks))
    return Status(project=ctx.config.project, phases=phases)


# --- data -----------------------------------------------------------------------------


def data_load(
    project_dir: Path,
    datasets: list[str] | None = None,
    *,
    database_url: str | None = None,
    reporter: Reporter | None = None,
    workers: int = 2,
) -> LoadResult:
    """Load the datasets (default all) into `<target.schema>.<table>`, holding the
    project lock; unchanged files are skipped, changed ones replaced."""
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
    from migrate.manifests.lint import LintReport
    from migrate.manifests.model import PhaseManifests
    from migrate.manifests.validate import ValidationReport

DEFAULT_RENDER_DIR = Path("manifests")


@dataclass(frozen=True)
class RenderResult:
    out_dir: Path
    phases: list[PhaseManifests]
    files: list[Path]
    validation: ValidationReport
    diagram: Path | None = None
    lint: LintReport | None = None  # the whole-set checks (migrate.manifests.lint)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "out": str(self.out_dir),
            "phases": [
                {
                    "id": p.phase,
                    "dir": str(self.out_dir / f"phase-{p.phase}"),
                    "objects": [
                        {
                            "file": m.filename,
                            "apiVersion": m.api_version,
                            "kind": m.kind,
                            "name": m.name,
                            "namespace": m.namespace,
                            "task": m.task,
                        }
                        for m in p.manifests
                    ],
                    "helm_releases": [
                        {"file": r.filename, "name": r.name, "chart": r.chart, "version": r.version}
                        for r in p.releases
                    ],
                }
                for p in self.phases
            ],
            "validation": self.validation.to_dict(),
            "diagram": str(self.diagram) if self.diagram else None,
            "findings": [f.to_dict() for f in self.lint.findings] if self.lint else [],
        }


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
    from migrate.manifests import lint
    from migrate.manifests.diagram import mermaid
    from migrate.manifests.render import render_project, write
    from migrate.manifests.validate import validate
    from migrate.project import open_context

    ctx = open_context(project_dir)
    if phase:
        ctx.roadmap.phase(phase)  # an unknown phase is an error, as before
    everything = render_project(ctx)
    phases = [p for p in everything if not phase or p.phase == phase]
    report = validate(
        [m for p in phases for m in p.manifests], ctx.config.target.kubernetes_version
    )
    findings = lint.check(everything, skip_checks).for_phases([phase] if phase else None)
    lint.raise_for(findings, minimum_failure_severity)
    out_dir = out if out is not None else project_dir / DEFAULT_RENDER_DIR
    files = write(phases, out_dir)
    picture = None
    if diagram:
        picture = out_dir / "architecture.md"
        picture.write_text(
            "# Target architecture\n\nDrawn by `migrate render --diagram` from the rendered "
            "objects.\n\n```mermaid\n" + mermaid(phases) + "```\n",
            encoding="utf-8",
        )
    return RenderResult(
        out_dir=out_dir,
        phases=phases,
        files=files,
        validation=report,
        diagram=picture,
        lint=findings,
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
    from migrate.project import open_context
    from migrate.state.lock import ProjectLock
    from migrate.verify import junit, runner

    ctx = open_context(project_dir, reporter, journal=True)
    with ProjectLock(ctx.state_dir, "verify"):  # it records which tasks are done
        result = runner.verify(
            ctx, [phase] if phase else None, timeout=timeout or runner.DEFAULT_TIMEOUT
        )
    if junit_xml is not None:
        junit.write(result, junit_xml)
    return result


@dataclass(frozen=True)
class CiResult:
    plan: Plan
    checks: VerifyReport
    exit_code: int  # 0 all verified, nothing pending; 2 changes pending, checks pass; 1 failed
    summary: str  # Markdown, for $GITHUB_STEP_SUMMARY


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
    import json

    from migrate.engine.plan import build_plan
    from migrate.project import open_context
    from migrate.report import summary
    from migrate.state.lock import ProjectLock
    from migrate.verify import junit, runner

    ctx = open_context(project_dir, reporter, journal=True)  # validates config and roadmap
    phases = [phase] if phase else None
    the_plan = build_plan(ctx, phases)
    if plan_json is not None:
        plan_json.parent.mkdir(parents=True, exist_ok=True)
        plan_json.write_text(json.dumps(the_plan.to_dict(), indent=2) + "\n", encoding="utf-8")
    with ProjectLock(ctx.state_dir, "ci"):  # verifying records which tasks are done
        checks = runner.verify(ctx, phases, timeout=timeout or runner.DEFAULT_TIMEOUT)
    if junit_xml is not None:
        junit.write(checks, junit_xml)
    code = 1 if not checks.passed else 2 if the_plan.has_changes else 0
    text = summary.markdown(ctx.config.project, the_plan, checks, code)
    return CiResult(plan=the_plan, checks=checks, exit_code=code, summary=text)


def report(project_dir: Path, *, fmt: Literal["markdown", "html"] = "markdown") -> str:
    """The Architecture Blueprint with every task ticked from its verified status."""
    from migrate.project import open_context
    from migrate.report import blueprint

    return blueprint.render(open_context(project_dir), fmt)
