"""One Pulumi stack per phase, on the project's backend, through the Automation API.

Stack `<stack_prefix>-phase<N>` of Pulumi project `<project>`; the backend is
`pulumi.backend_url`, by default a file backend in `.migrate/pulumi`; secrets
are encrypted with a passphrase (PULUMI_CONFIG_PASSPHRASE or
PULUMI_CONFIG_PASSPHRASE_FILE when set, else one generated once into
`.migrate/pulumi/passphrase`, readable by its owner only).
"""

from __future__ import annotations

import os
import secrets as random_secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrate.errors import UserError
from migrate.infra import cluster
from migrate.infra.program import StackSpec, build_program
from migrate.manifests import applied
from migrate.secrets import Secret, mask_text

if TYPE_CHECKING:
    from migrate.engine.context import Context

PASSPHRASE_FILE = "passphrase"


def stack_name(ctx: Context, phase: int) -> str:
    prefix = ctx.config.pulumi.stack_prefix or ctx.config.project
    return f"{prefix}-phase{phase}"


def pulumi_dir(ctx: Context) -> Path:
    return ctx.state_dir / "pulumi"


def backend_url(ctx: Context) -> str:
    if ctx.config.pulumi.backend_url:
        return ctx.config.pulumi.backend_url
    return pulumi_dir(ctx).resolve().as_uri()


def _passphrase_env(ctx: Context) -> dict[str, str]:
    if os.environ.get("PULUMI_CONFIG_PASSPHRASE") or os.environ.get(
        "PULUMI_CONFIG_PASSPHRASE_FILE"
    ):
        return {}
    path = pulumi_dir(ctx) / PASSPHRASE_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(random_secrets.token_urlsafe(32) + "\n")
    return {"PULUMI_CONFIG_PASSPHRASE_FILE": str(path.resolve())}


def database_url(ctx: Context) -> Secret | None:
    """The URL the plugins' database Secret gets: MIGRATE_DATABASE_URL, then migrate.yaml."""
    from_env = os.environ.get("MIGRATE_DATABASE_URL")
    if from_env:
        return Secret(from_env)
    return ctx.config.target.database_url


def spec_for(ctx: Context, phase: int, records: list[applied.Record]) -> StackSpec:
    """The program's input: the union of the phase's applied records."""
    from migrate.manifests.render import DATABASE_SECRET_KEY, Names

    names = Names(ctx.config.project, ctx.config.target.namespace)
    objects = [obj for record in records for obj in record.get("objects", [])]
    releases = [release for record in records for release in record.get("releases", [])]
    previous = None
    if phase > 1 and applied.phase_records(ctx.state_dir, phase - 1):
        previous = f"organization/{ctx.config.project}/{stack_name(ctx, phase - 1)}"
    return StackSpec(
        project=ctx.config.project,
        phase=phase,
        namespace=names.namespace,
        objects=objects,
        releases=releases,
        kube_context=ctx.config.target.kube_context,
        database_url=database_url(ctx),
        database_secret=names.database_secret,
        database_secret_key=DATABASE_SECRET_KEY,
        previous_stack=previous,
    )


def open_stack(ctx: Context, spec: StackSpec) -> Any:
    """Create or select the phase's stack; fails with a sentence when Pulumi or the cluster
    is not there."""
    cluster.require_libraries()
    cluster.require_cli()
    cluster.require_cluster(ctx.config.target.kube_context)
    from pulumi import automation as auto

    work_dir = pulumi_dir(ctx) / "workspace"
    work_dir.mkdir(parents=True, exist_ok=True)
    settings = auto.ProjectSettings(
        name=ctx.config.project,
        runtime="python",
        backend=auto.ProjectBackend(url=backend_url(ctx)),
    )
    options = auto.LocalWorkspaceOptions(
        work_dir=str(work_dir),
        project_settings=settings,
        secrets_provider="passphrase",
        env_vars=_passphrase_env(ctx),
    )
    try:
        return auto.create_or_select_stack(
            stack_name(ctx, spec.phase),
            project_name=ctx.config.project,
            program=build_program(spec),
            opts=options,
        )
    except auto.CommandError as exc:
        raise _failed("open the stack", exc) from None


def _failed(what: str, exc: Exception) -> UserError:
    text = mask_text(str(exc)).strip().splitlines()
    tail = "\n  ".join(text[-12:])
    return UserError(
        f"Pulumi could not {what}:\n  {tail}",
        hint="fix the cause and run the same command again",
    )


@dataclass(frozen=True)
class StackResult:
    stack: str
    verb: str
    summary: dict[str, int]
    outputs: dict[str, Any]

    def describe(self) -> str:
        counts = ", ".join(f"{n} {op}" for op, n in sorted(self.summary.items()) if n)
        return f"stack {self.stack}: {self.verb} {counts or 'no changes'}"


def _on_output(ctx: Context) -> Any:
    def emit(line: str) -> None:
        ctx.reporter.info(mask_text(line.rstrip()))

    return emit


def preview(ctx: Context, phase: int, records: list[applied.Record]) -> StackResult:
    spec = spec_for(ctx, phase, records)
    stack = open_stack(ctx, spec)
    from pulumi import automation as auto

    try:
        result = stack.preview(on_output=_on_output(ctx))
    except auto.CommandError as exc:
        raise _failed("preview", exc) from None
    return StackResult(stack.name, "preview", dict(result.change_summary), {})


def up(ctx: Context, phase: int, records: list[applied.Record]) -> StackResult:
    spec = spec_for(ctx, phase, records)
    stack = open_stack(ctx, spec)
    from pulumi import automation as auto

    try:
        result = stack.up(on_output=_on_output(ctx))
    except auto.CommandError as exc:
        raise _failed("update the stack", exc) from None
    summary = dict(result.summary.resource_changes or {})
    outputs = {k: ("[secret]" if v.secret else v.value) for k, v in result.outputs.items()}
    return StackResult(stack.name, "up", summary, outputs)


def destroy(ctx: Context, phase: int) -> StackResult:
    spec = spec_for(ctx, phase, [])
    stack = open_stack(ctx, spec)
    from pulumi import automation as auto

    try:
        result = stack.destroy(on_output=_on_output(ctx))
    except auto.CommandError as exc:
        raise _failed("destroy the stack", exc) from None
    return StackResult(stack.name, "destroy", dict(result.summary.resource_changes or {}), {})
