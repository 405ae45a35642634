"""`manifests`: render a task's components, validate them, provision them through Pulumi.

plan: render the task's objects, validate the core ones strictly, and diff
them against the set last applied for the task (or, when the Pulumi CLI
and the cluster are reachable, show Pulumi's preview of the phase stack);
the summary says which of the two it shows. apply: `pulumi up` of the
phase's stack with the task's new objects, then record them (and the
blue-green tracks it switched). rollback: put the previous record (and
tracks) back and `pulumi up` again, or destroy the stack when nothing is
left in it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from migrate.engine.change import Change, Receipt
from migrate.manifests.components import ManifestsParams

if TYPE_CHECKING:
    from pydantic import BaseModel

    from migrate.engine.context import Context
    from migrate.manifests.model import TaskManifests
    from migrate.roadmap import Task


class RenderedAction:
    """What the `manifests` and `infra` kinds share: both provision rendered objects."""

    kind: ClassVar[str]
    Params: ClassVar[type[BaseModel] | None]

    def _render(self, ctx: Context, task: Task) -> tuple[int, TaskManifests, dict[str, Any]]:
        from migrate.manifests.render_memo import render_memo

        phase, _ = ctx.roadmap.task(task.id)
        memo = render_memo(ctx)  # what the task rendered last time, when nothing changed
        kept = memo.get(phase.id, task.id)
        if kept is not None:
            rendered, tracks = kept
        else:
            rendered, tracks = self._render_now(ctx, phase.id, task)
            memo.put(rendered, tracks)
        # kept for the whole-set checks (migrate.manifests.lint.rendered_set)
        ctx.__dict__.setdefault("_manifests_rendered", {})[(phase.id, task.id)] = rendered
        return phase.id, rendered, tracks

    def _render_now(
        self, ctx: Context, phase: int, task: Task
    ) -> tuple[TaskManifests, dict[str, Any]]:
        from migrate.manifests.render import Renderer

        # one renderer per context: a plan renders many tasks over the same facts
        renderer: Renderer | None = ctx.__dict__.get("_manifests_renderer")
        if renderer is None:
            renderer = ctx.__dict__["_manifests_renderer"] = Renderer(ctx)
        rendered = renderer.render_task(phase, task)
        tracks: dict[str, Any] = {}
        if task.action == "manifests":
            from migrate.actions.base import params as task_params

            params: ManifestsParams = task_params(ctx, task)  # checked once, expanded
            if "workloads" in params.components and params.strategy == "blue-green":
                tracks = {name: t.to_dict() for name, t in renderer.tracks.items()}
        return rendered, tracks

    def plan(self, ctx: Context, task: Task) -> list[Change]:
        from migrate.manifests import applied

        phase, rendered, tracks = self._render(ctx, task)
        skipped, not_checked = _schema_check(ctx, rendered)
        record = applied.load(ctx.state_dir, phase, task.id)
        difference = applied.diff(rendered, record)
        switches = _track_switches(ctx, tracks)
        source = _preview_or_diff(ctx, phase, rendered, difference.summary())
        if record is None:
            op = "create"
        elif difference.changed or switches:
            op = "update"
        else:
            op = "noop"
        detail_lines = [difference.text] if op != "noop" and difference.text else []
        detail_lines += [f"~ blue-green: {s}" for s in switches]
        undo = _rollback_split(ctx, rendered.to_record(), record)
        if op != "noop" and undo:
            detail_lines += [f"  on rollback, {line}" for line in undo.lines()]
        if skipped:
            detail_lines.append(f"  not schema-checked: {skipped}")
        elif not_checked:
            detail_lines.append(
                "  not schema-checked (custom resources): " + ", ".join(not_checked)
            )
        summary = f"{len(rendered.manifests)} objects, {len(rendered.releases)} Helm releases: "
        summary += source
        return [
            Change(
                task=task.id,
                action=self.kind,
                op=op,  # type: ignore[arg-type]
                resource=f"k8s:phase-{phase}/{task.id}",
                summary=summary,
                data={"phase": phase, "record": rendered.to_record(), "tracks": tracks},
                detail="\n".join(line for line in detail_lines if line) or None,
            )
        ]

    def preflight(self, ctx: Context) -> None:
        """Refuse before anything is asked or changed when Pulumi or the cluster is not there."""
        from migrate.infra import cluster

        cluster.require_libraries()
        cluster.require_cli()
        cluster.require_cluster(ctx.config.target.kube_context)

    def prepare(self, ctx: Context, change: Change) -> Receipt:
        from migrate.infra.stack import stack_name
        from migrate.manifests import applied
        from migrate.manifests import tracks as tracks_state

        self.preflight(ctx)  # also when the executor runs without `api.apply`
        phase = int(change.data["phase"])
        current_tracks = tracks_state.load(ctx.state_dir)
        previous = applied.load(ctx.state_dir, phase, change.task)
        undo = _rollback_split(ctx, change.data["record"], previous)
        return {
            "undo": "; ".join(undo.lines()) if undo else "",
            "phase": phase,
            "task": change.task,
            "stack": stack_name(ctx, phase),
            "previous_record": previous,
            "previous_tracks": {
                name: current_tracks.get(name) for name in change.data.get("tracks", {})
            },
        }

    def apply(self, ctx: Context, change: Change) -> Receipt:
        from migrate.infra import stack
        from migrate.manifests import applied
        from migrate.manifests import tracks as tracks_state

        phase = int(change.data["phase"])
        record = change.data["record"]
        others = [
            r for r in applied.phase_records(ctx.state_dir, phase) if r["task"] != change.task
        ]
        result = stack.up(ctx, phase, [*others, record], changing={change.task})
        applied.save(ctx.state_dir, record)
        if change.data.get("tracks"):
            tracks_state.save(
                ctx.state_dir, {**tracks_state.load(ctx.state_dir), **change.data["tracks"]}
            )
        return {"up": result.describe()}

    def rollback(self, ctx: Context, receipt: Receipt) -> None:
        from migrate.infra import stack
        from migrate.manifests import applied
        from migrate.manifests import tracks as tracks_state

        phase, task = int(receipt["phase"]), str(receipt["task"])
        previous = receipt.get("previous_record")
        others = [r for r in applied.phase_records(ctx.state_dir, phase) if r["task"] != task]
        remaining = [*others, previous] if previous else others
        # the stack's state is exported first; retained resources stay in the cluster
        if any(r.get("objects") or r.get("releases") for r in remaining):
            stack.up(ctx, phase, remaining, changing={task}, backup_first="rollback")
        else:
            stack.destroy(ctx, phase, why="rollback")
        if previous:
            applied.save(ctx.state_dir, previous)
        else:
            applied.delete(ctx.state_dir, phase, task)
        previous_tracks = receipt.get("previous_tracks") or {}
        if previous_tracks:
            current = tracks_state.load(ctx.state_dir)
            for name, value in previous_tracks.items():
                if value is None:
                    current.pop(name, None)
                else:
                    current[name] = value
            tracks_state.save(ctx.state_dir, current)


class ManifestsAction(RenderedAction):
    kind: ClassVar[str] = "manifests"
    Params: ClassVar[type[BaseModel] | None] = ManifestsParams


def _schema_check(ctx: Context, rendered: TaskManifests) -> tuple[str | None, list[str]]:
    """The task's objects checked against their schemas (migrate.manifests.validate,
    which raises on a failure): why nothing was checked, and the objects not checked.

    What it said of a render the memo keeps is kept with it (RenderMemo.keep_for): the
    memo's key covers all a check reads (the objects, the Kubernetes version in the
    config, migrate's code and vendored CRDs, the checking libraries' files). A failure
    is never kept: it is raised again on every plan."""
    from migrate.manifests.render_memo import render_memo

    memo = render_memo(ctx)
    version = ctx.config.target.kubernetes_version
    key = "schema-check|" + version
    found = memo.value_for(rendered, key)
    if isinstance(found, dict):
        skipped, not_checked = found.get("skipped"), found.get("not_checked")
        if (skipped is None or isinstance(skipped, str)) and (
            isinstance(not_checked, list) and all(isinstance(r, str) for r in not_checked)
        ):
            return skipped, not_checked
    from migrate.manifests.validate import validate

    report = validate(rendered.manifests, version, required=False)
    refs = [m.ref for m in report.not_checked]
    memo.keep_for(rendered, key, {"skipped": report.skipped, "not_checked": refs})
    return report.skipped, refs


def _track_switches(ctx: Context, tracks: dict[str, Any]) -> list[str]:
    from migrate.manifests import tracks as tracks_state

    current = tracks_state.load(ctx.state_dir)
    switches = []
    for name, track in sorted(tracks.items()):
        before = current.get(name)
        if before and before.get("active") != track["active"]:
            switches.append(
                f"{name}: Service switches from {before['active']} to {track['active']} "
                f"({track[track['active']]})"
            )
    return switches


def _preview_or_diff(ctx: Context, phase: int, rendered: TaskManifests, diff_summary: str) -> str:
    """Pulumi's preview of the phase stack when it can run, else the manifest diff."""
    from migrate.infra.cluster import readiness

    reason = readiness(ctx.config.target.kube_context)
    if reason is None:
        from migrate.infra import stack
        from migrate.manifests import applied

        others = [
            r for r in applied.phase_records(ctx.state_dir, phase) if r["task"] != rendered.task
        ]
        result = stack.preview(ctx, phase, [*others, rendered.to_record()])
        if result is not None:
            return f"Pulumi preview of {result.describe()}"
        reason = f"stack {stack.stack_name(ctx, phase)} does not exist yet"
    return f"{diff_summary} (diff against the last applied set; no Pulumi preview: {reason})"


def _rollback_split(ctx: Context, record: Any, previous: Any) -> Any:
    """What rolling this change back removes from the cluster, kept and deleted."""
    from migrate.infra.graph import object_node
    from migrate.infra.retention import split

    before = previous or {}
    old_objects = {object_node(o) for o in before.get("objects", [])}
    old_releases = {r["name"] for r in before.get("releases", [])}
    objects = [o for o in record.get("objects", []) if object_node(o) not in old_objects]
    releases = [r for r in record.get("releases", []) if r["name"] not in old_releases]
    if not objects and not releases:
        return None
    return split(objects, releases, ctx.config.pulumi.keep_data)
