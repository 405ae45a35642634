"""`migrate infra preview|up|destroy|cancel` as functions over a project directory.

`up` goes through the executor and the journal like `apply` of the phase's
`manifests`/`infra` tasks, so `migrate rollback` undoes it; `destroy` journals
that the phase's provisioning steps are gone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from migrate.errors import UserError
from migrate.reporting import Reporter
from migrate.roadmap import RENDERED_KINDS

if TYPE_CHECKING:
    from migrate.engine.context import Context
    from migrate.infra.stack import StackResult

InfraVerb = Literal["preview", "up", "destroy", "cancel"]


@dataclass(frozen=True)
class InfraResult:
    verb: str
    phase: int
    stack: str
    summary: dict[str, int]
    outputs: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "verb": self.verb,
            "phase": self.phase,
            "stack": self.stack,
            "summary": self.summary,
            "outputs": self.outputs,
        }


def run(
    project_dir: Path,
    verb: InfraVerb,
    phase: int,
    *,
    confirm: Callable[[], bool] | None = None,
    reporter: Reporter | None = None,
) -> InfraResult | None:
    """`preview`, `up`, `destroy` or `cancel` the Pulumi stack of `phase`, holding the
    project lock. Raises a `UserError` saying how to fix it when the Pulumi CLI or the
    cluster is not there (checked before `confirm` is asked); None when `confirm`
    declined."""
    from migrate.infra import cluster
    from migrate.project import open_context
    from migrate.state.lock import ProjectLock

    ctx = open_context(project_dir, reporter, journal=verb in ("up", "destroy"))
    ctx.roadmap.phase(phase)  # an unknown phase is the mistake to name first
    cluster.require_libraries()
    cluster.require_cli()
    cluster.require_cluster(ctx.config.target.kube_context)
    if verb == "up":
        return up(ctx, phase, confirm)
    if confirm is not None and not confirm():
        return None
    with ProjectLock(ctx.state_dir, f"infra {verb} --phase {phase}"):
        step = {"cancel": _cancel, "destroy": destroy, "preview": preview}[verb]
        result = step(ctx, phase)
    return InfraResult(verb, phase, result.stack, result.summary, result.outputs)


def up(ctx: Context, phase: int, confirm: Callable[[], bool] | None) -> InfraResult | None:
    """The phase's provisioning tasks through the executor, journaled; with nothing
    changed, the recorded set again (`up --refresh`: catches drift, changes no record)."""
    from migrate.engine import gate
    from migrate.engine.executor import apply_plan, settle
    from migrate.engine.plan import build_plan
    from migrate.infra import stack
    from migrate.manifests import applied
    from migrate.state.lock import ProjectLock

    tasks = [t.id for t in ctx.roadmap.phase(phase).tasks if t.action in RENDERED_KINDS]
    if not tasks:
        raise UserError(f"phase {phase} has no `manifests` or `infra` task to provision")
    with ProjectLock(ctx.state_dir, f"infra up --phase {phase}"):
        the_plan = build_plan(ctx, [phase], tasks)
        gate.preflight(ctx, the_plan)
        if confirm is not None and not confirm():
            return None
        if the_plan.has_changes:
            run = apply_plan(ctx, the_plan, verb="infra up")
            summary = {"tasks applied": sum(len(t.applied) for t in run.tasks)}
            name = stack.stack_name(ctx, phase)
            outputs: dict[str, Any] = {"run": run.run_id}
        else:
            settle(ctx, the_plan)
            result = stack.up(ctx, phase, applied.phase_records(ctx.state_dir, phase))
            summary, name, outputs = result.summary, result.stack, result.outputs
    return InfraResult(verb="up", phase=phase, stack=name, summary=summary, outputs=outputs)


def destroy(ctx: Context, phase: int) -> StackResult:
    """Destroy the phase's stack (its state exported first), forget its applied records,
    and journal that its provisioning steps are gone."""
    from migrate.infra import stack
    from migrate.manifests import applied

    assert ctx.journal is not None  # opened with journal=True
    run_id = ctx.journal.start_run("infra destroy", phase)
    status = "failed"
    try:
        result = stack.destroy(ctx, phase)
        for record in applied.phase_records(ctx.state_dir, phase):
            applied.delete(ctx.state_dir, phase, str(record["task"]))
        for step in ctx.journal.undoable_steps(phase):
            if step.action in RENDERED_KINDS:
                ctx.journal.mark_rolled_back(step.id)
        status = "ok"
    finally:
        ctx.journal.finish_run(run_id, status)
    return result


def preview(ctx: Context, phase: int) -> StackResult:
    """Pulumi's preview of the phase's rendered set (everything to create when the stack
    does not exist yet: previewing creates nothing)."""
    from migrate.infra import stack
    from migrate.manifests.render import render_project
    from migrate.manifests.validate import validate

    (rendered,) = render_project(ctx, [phase])
    validate(rendered.manifests, ctx.config.target.kubernetes_version)
    records = [t.to_record() for t in rendered.tasks]
    result = stack.preview(ctx, phase, records)
    if result is None:
        count = sum(len(r["objects"]) + len(r["releases"]) for r in records)
        result = stack.StackResult(
            stack.stack_name(ctx, phase), "preview", {"create": count}, {"exists": False}
        )
    return result


def _cancel(ctx: Context, phase: int) -> StackResult:
    from migrate.infra import stack

    return stack.cancel(ctx, phase)
