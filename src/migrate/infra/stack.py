"""One Pulumi stack per phase, on the project's backend, through the Automation API.

Stack `<stack_prefix>-phase<N>` of Pulumi project `<project>`; the backend is
`pulumi.backend_url`, by default a file backend in `.migrate/pulumi`. The
engine calls here are thin; what they act on is data computed beforehand
(`spec_for`, `applied_state`, `disagreement`, `passphrase_env`), which tests
hold without an engine.

Secrets: `pulumi.secrets_provider` (a KMS URL) when set; else a passphrase:
a non-empty PULUMI_CONFIG_PASSPHRASE, then PULUMI_CONFIG_PASSPHRASE_FILE,
then (file backends only) one generated once into `.migrate/pulumi/passphrase`
(mode 0600). An empty PULUMI_CONFIG_PASSPHRASE never wins over a file. A
remote backend needs an explicit passphrase or a KMS provider: a generated
one would exist on one machine only.

What a stack keeps between runs: its outputs hold the applied set (read back
and compared with the local records before each `up`), its config the
database URL (a secret) and the kube context preflight resolved (pinned).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets as random_secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrate.errors import UserError
from migrate.infra import cluster
from migrate.infra.program import APPLIED_OUTPUT, StackSpec, build_program
from migrate.manifests import applied
from migrate.secrets import Secret, mask_text

if TYPE_CHECKING:
    from migrate.engine.context import Context

PASSPHRASE_FILE = "passphrase"
BACKUP_DIR = "backups"
CONFIG_DATABASE_URL = "migrate:databaseUrl"
CONFIG_KUBE_CONTEXT = "migrate:kubeContext"


def stack_name(ctx: Context, phase: int) -> str:
    prefix = ctx.config.pulumi.stack_prefix or ctx.config.project
    return f"{prefix}-phase{phase}"


def pulumi_dir(ctx: Context) -> Path:
    return ctx.state_dir / "pulumi"


def workspace_dir(ctx: Context) -> Path:
    return pulumi_dir(ctx) / "workspace"


def backup_dir(ctx: Context) -> Path:
    return pulumi_dir(ctx) / BACKUP_DIR


def backend_url(ctx: Context) -> str:
    if ctx.config.pulumi.backend_url:
        return ctx.config.pulumi.backend_url
    return pulumi_dir(ctx).resolve().as_uri()


def is_local_backend(url: str) -> bool:
    return url.startswith("file://")


def ensure_gitignore(state_dir: Path) -> None:
    """`.migrate/` holds state, backups and the passphrase: never commit it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / ".gitignore"
    if not path.exists():
        path.write_text(
            "# written by migrate: state, Pulumi backups (with secrets) and the passphrase\n*\n",
            encoding="utf-8",
        )


def ignore_state_dir(project_dir: Path) -> None:
    """The project's .gitignore lists `.migrate/` (written by `init`; appended when missing)."""
    path = project_dir / ".gitignore"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if any(
        line.strip() in (".migrate", ".migrate/", "/.migrate", "/.migrate/")
        for line in text.splitlines()
    ):
        return
    prefix = "" if not text or text.endswith("\n") else "\n"
    path.write_text(
        text + prefix + "# migrate's state, Pulumi backups and passphrase: never commit them\n"
        ".migrate/\n",
        encoding="utf-8",
    )


def passphrase_env(
    ctx: Context, *, create: bool = True, environ: dict[str, str] | None = None
) -> dict[str, str] | None:
    """The variables Pulumi gets for its secrets; None when no passphrase exists yet and
    `create` is false (then no stack can have been made with one)."""
    env = dict(os.environ if environ is None else environ)
    if ctx.config.pulumi.secrets_provider:
        return {}
    if env.get("PULUMI_CONFIG_PASSPHRASE"):
        return {}
    empty_set = "PULUMI_CONFIG_PASSPHRASE" in env  # set but empty: Pulumi would use ""
    if env.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        if not empty_set:
            return {}
        given = Path(env["PULUMI_CONFIG_PASSPHRASE_FILE"]).expanduser()
        return {"PULUMI_CONFIG_PASSPHRASE": _read_passphrase(given)}
    url = backend_url(ctx)
    if not is_local_backend(url):
        raise UserError(
            f"the Pulumi backend {url} is shared, and its secrets need a passphrase every "
            "machine has (or a KMS key); migrate will not generate one that only this "
            "machine knows",
            hint="set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE), or "
            "pulumi.secrets_provider in migrate.yaml (e.g. awskms://alias/KEY)",
        )
    path = pulumi_dir(ctx) / PASSPHRASE_FILE
    if not path.is_file():
        if not create:
            return None
        ensure_gitignore(ctx.state_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(random_secrets.token_urlsafe(32) + "\n")
    if empty_set:
        return {"PULUMI_CONFIG_PASSPHRASE": _read_passphrase(path)}
    return {"PULUMI_CONFIG_PASSPHRASE_FILE": str(path.resolve())}


def _read_passphrase(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").rstrip("\n")
    except OSError as exc:
        raise UserError(
            f"the Pulumi passphrase file {path} cannot be read: {exc.strerror or exc}",
            hint="fix PULUMI_CONFIG_PASSPHRASE_FILE",
        ) from None


def database_url(ctx: Context) -> Secret | None:
    """The URL the plugins' database Secret gets: MIGRATE_DATABASE_URL, then migrate.yaml.

    None: the stack's config keeps the one an earlier run stored."""
    from_env = os.environ.get("MIGRATE_DATABASE_URL")
    if from_env:
        return Secret(from_env)
    return ctx.config.target.database_url


def record_digest(record: applied.Record) -> str:
    """What a task's record provisions, as a short digest (objects and releases)."""
    body = {"objects": record.get("objects", []), "releases": record.get("releases", [])}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def applied_state(records: list[applied.Record]) -> dict[str, str]:
    """The applied set a stack exports: {task: digest}."""
    return {str(r["task"]): record_digest(r) for r in records}


def disagreement(
    in_stack: dict[str, str], records: list[applied.Record], changing: set[str]
) -> list[str]:
    """Tasks the stack holds that an `up` of `records` would change without meaning to:
    missing from the local records (Pulumi would delete them) or different. Pure."""
    local = applied_state(records)
    problems = []
    for task, digest in sorted(in_stack.items()):
        if task in changing:
            continue
        if task not in local:
            problems.append(f"{task} (in the stack, not in this machine's records)")
        elif local[task] != digest:
            problems.append(f"{task} (the stack's differs from this machine's record)")
    return problems


def spec_for(
    ctx: Context, phase: int, records: list[applied.Record], kube_context: str | None = None
) -> StackSpec:
    """The program's input: the union of the phase's applied records."""
    from migrate.manifests.render import DATABASE_SECRET_KEY, Names

    names = Names(ctx.config.project, ctx.config.target.namespace)
    objects = [obj for record in records for obj in record.get("objects", [])]
    releases = [release for record in records for release in record.get("releases", [])]
    previous = None
    injected: set[str] = set()
    for earlier in range(1, phase):
        for record in applied.phase_records(ctx.state_dir, earlier):
            for obj in record.get("objects", []):
                labels = obj.get("metadata", {}).get("labels", {})
                if obj["kind"] == "Namespace" and labels.get("istio-injection") == "enabled":
                    injected.add(obj["metadata"]["name"])
    if phase > 1 and applied.phase_records(ctx.state_dir, phase - 1):
        previous = stack_name(ctx, phase - 1)
    return StackSpec(
        project=ctx.config.project,
        phase=phase,
        namespace=names.namespace,
        objects=objects,
        releases=releases,
        kube_context=kube_context or ctx.config.target.kube_context,
        database_url=database_url(ctx),
        database_secret=names.database_secret,
        database_secret_key=DATABASE_SECRET_KEY,
        previous_stack=previous,
        applied=applied_state(records),
        keep_data=ctx.config.pulumi.keep_data,
        injected_namespaces=tuple(sorted(injected)),
    )


# --- the engine calls --------------------------------------------------------------------


class StackBusy(UserError):
    """Another update of the stack holds its lock."""


def _failed(ctx: Context, phase: int, what: str, exc: Exception) -> UserError:
    from pulumi.automation import errors

    text = mask_text(str(exc)).strip().splitlines()
    tail = "\n  ".join(text[-12:])
    if isinstance(exc, errors.ConcurrentUpdateError):
        return StackBusy(
            f"Pulumi could not {what}: another update of stack {stack_name(ctx, phase)} is in "
            f"progress, or one was interrupted and left its lock:\n  {tail}",
            hint="wait for the other update to finish and run the same command again; if none "
            f"is running, `migrate infra cancel --phase {phase}` releases the lock",
        )
    return UserError(
        f"Pulumi could not {what}:\n  {tail}",
        hint="fix the cause and run the same command again",
    )


def _pending_operations(exc: Exception) -> bool:
    return "pending operation" in str(exc).lower()


def open_stack(ctx: Context, phase: int, *, create: bool = True) -> tuple[Any, str] | None:
    """Select the phase's stack (and create it when `create`); (stack, kube context).

    None when `create` is false and the stack (or its workspace or passphrase)
    does not exist yet: then nothing was made. Fails with a sentence when
    Pulumi or the cluster is not there."""
    cluster.require_libraries()
    cluster.require_cli()
    context = cluster.require_cluster(ctx.config.target.kube_context)
    from pulumi import automation as auto

    url = backend_url(ctx)
    work_dir = workspace_dir(ctx)
    if not create and (
        not work_dir.is_dir() or (is_local_backend(url) and not pulumi_dir(ctx).is_dir())
    ):
        return None
    env = passphrase_env(ctx, create=create)
    if env is None:
        return None
    ensure_gitignore(ctx.state_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    settings = auto.ProjectSettings(
        name=ctx.config.project, runtime="python", backend=auto.ProjectBackend(url=url)
    )
    options = auto.LocalWorkspaceOptions(
        work_dir=str(work_dir),
        project_settings=settings,
        secrets_provider=ctx.config.pulumi.secrets_provider or "passphrase",
        env_vars=env,
    )
    name = stack_name(ctx, phase)
    opener = auto.create_or_select_stack if create else auto.select_stack
    try:
        stack = opener(name, project_name=ctx.config.project, program=_nothing, opts=options)
    except auto.StackNotFoundError:
        return None
    except auto.InvalidVersionError as exc:
        raise UserError(
            f"the installed Pulumi CLI cannot run migrate's stacks: {exc}",
            hint=f"install a current Pulumi CLI; {cluster.INSTALL_PULUMI}",
        ) from None
    except auto.CommandError as exc:
        raise _failed(ctx, phase, "open the stack", exc) from None
    return stack, _pinned_context(ctx, stack, context)


def _nothing() -> None:
    """The program a stack is opened with; each operation passes the phase's own."""


def _pinned_context(ctx: Context, stack: Any, resolved: str) -> str:
    """The kube context the stack was first provisioned on; refuse when it has moved."""
    config = stack.get_all_config()
    stored = config.get(CONFIG_KUBE_CONTEXT)
    if stored is not None and stored.value != resolved:
        raise UserError(
            f"stack {stack.name} was provisioned on kube context {stored.value!r}, and the "
            f"context now resolves to {resolved!r}",
            hint=f"set target.kube_context: {stored.value} in migrate.yaml (or switch back "
            f"to it); if the cluster really moved, `pulumi config rm {CONFIG_KUBE_CONTEXT} "
            f"--stack {stack.name}` in {ctx.state_dir / 'pulumi' / 'workspace'}",
        )
    return resolved


def _store_inputs(stack: Any, spec: StackSpec) -> None:
    """Keep what a later run may not know: the database URL (a secret), the context."""
    from pulumi import automation as auto

    if spec.kube_context:
        stack.set_config(CONFIG_KUBE_CONTEXT, auto.ConfigValue(spec.kube_context))
    if spec.database_url is not None:
        stack.set_config(
            CONFIG_DATABASE_URL, auto.ConfigValue(spec.database_url.reveal(), secret=True)
        )


def _in_stack(stack: Any) -> dict[str, str]:
    outputs = stack.outputs()
    value = outputs.get(APPLIED_OUTPUT)
    return dict(value.value) if value is not None and isinstance(value.value, dict) else {}


def backup(ctx: Context, stack: Any, why: str) -> Path:
    """`stack.export_stack()` into `.migrate/pulumi/backups/` (mode 0600: it holds the
    secrets in plain text); `pulumi stack import --file` puts it back."""
    deployment = stack.export_stack()
    directory = backup_dir(ctx)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = directory / f"{stack.name}-{stamp}-{why}.json"
    document = {"version": deployment.version, "deployment": deployment.deployment}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle)
    ctx.reporter.info(f"stack {stack.name}: state saved to {path} before {why}")
    return path


@dataclass(frozen=True)
class StackResult:
    stack: str
    verb: str
    summary: dict[str, int]
    outputs: dict[str, Any]
    backup: str | None = None

    def describe(self) -> str:
        counts = ", ".join(f"{n} {op}" for op, n in sorted(self.summary.items()) if n)
        return f"stack {self.stack}: {self.verb} {counts or 'no changes'}"


def _on_output(ctx: Context) -> Any:
    def emit(line: str) -> None:
        ctx.reporter.info(mask_text(line.rstrip()))

    return emit


def preview(ctx: Context, phase: int, records: list[applied.Record]) -> StackResult | None:
    """Pulumi's preview of the phase with `records`; None when the stack does not exist
    (nothing is created: no stack, workspace or passphrase)."""
    opened = open_stack(ctx, phase, create=False)
    if opened is None:
        return None
    stack, context = opened
    from pulumi import automation as auto

    spec = spec_for(ctx, phase, records, context)
    try:
        result = stack.preview(on_output=_on_output(ctx), program=build_program(spec))
    except auto.CommandError as exc:
        raise _failed(ctx, phase, "preview", exc) from None
    return StackResult(stack.name, "preview", dict(result.change_summary), {})


def up(
    ctx: Context,
    phase: int,
    records: list[applied.Record],
    *,
    changing: set[str] | None = None,
    backup_first: str | None = None,
) -> StackResult:
    """`pulumi up --refresh` of the phase with exactly `records`.

    Refuses when the stack holds tasks (other than `changing`) that the records
    lack or hold differently. `backup_first`: export the state first (why)."""
    opened = open_stack(ctx, phase)
    assert opened is not None
    stack, context = opened
    from pulumi import automation as auto

    spec = spec_for(ctx, phase, records, context)
    try:
        problems = disagreement(_in_stack(stack), records, changing or set())
    except auto.CommandError as exc:
        raise _failed(ctx, phase, "read the stack's outputs", exc) from None
    if problems:
        raise UserError(
            f"stack {stack.name} holds tasks this machine does not know as applied: "
            + "; ".join(problems)
            + "; an update from here would delete or change them",
            hint="run from the machine (or restore the .migrate/manifests/applied/ records) "
            "that applied them; the stack's outputs say what is applied "
            f"(`pulumi stack output {APPLIED_OUTPUT} --stack {stack.name}`)",
        )
    saved = backup(ctx, stack, backup_first) if backup_first else None
    program = build_program(spec)
    try:
        _store_inputs(stack, spec)
        try:
            result = stack.up(on_output=_on_output(ctx), program=program, refresh=True)
        except auto.CommandError as exc:
            if not _pending_operations(exc) or isinstance(exc, auto.ConcurrentUpdateError):
                raise
            # an interrupted update left operations pending: clear the pending creates
            # (server-side apply adopts what was half-made) and go again, once
            ctx.reporter.warn(
                f"stack {stack.name}: an interrupted update left pending operations; "
                "refreshing with --clear-pending-creates and updating again"
            )
            stack.refresh(on_output=_on_output(ctx), program=program, clear_pending_creates=True)
            result = stack.up(on_output=_on_output(ctx), program=program, refresh=True)
    except auto.CommandError as exc:
        raise _failed(ctx, phase, "update the stack", exc) from None
    summary = dict(result.summary.resource_changes or {})
    outputs = {k: ("[secret]" if v.secret else v.value) for k, v in result.outputs.items()}
    return StackResult(stack.name, "up", summary, outputs, str(saved) if saved else None)


def destroy(ctx: Context, phase: int, *, why: str = "destroy") -> StackResult:
    """Back the state up, then `pulumi destroy`: retained resources stay in the cluster."""
    opened = open_stack(ctx, phase)
    assert opened is not None
    stack, context = opened
    from pulumi import automation as auto

    spec = replace(spec_for(ctx, phase, [], context), previous_stack=None)
    saved = backup(ctx, stack, why)
    try:
        result = stack.destroy(on_output=_on_output(ctx), program=build_program(spec))
    except auto.CommandError as exc:
        raise _failed(ctx, phase, "destroy the stack", exc) from None
    summary = dict(result.summary.resource_changes or {})
    return StackResult(stack.name, "destroy", summary, {}, str(saved))


def cancel(ctx: Context, phase: int) -> StackResult:
    """`pulumi cancel`: stop the stack's running update and release its lock."""
    opened = open_stack(ctx, phase, create=False)
    if opened is None:
        raise UserError(f"stack {stack_name(ctx, phase)} does not exist: nothing to cancel")
    stack, _ = opened
    from pulumi import automation as auto

    try:
        stack.cancel()
    except auto.CommandError as exc:
        raise _failed(ctx, phase, "cancel the update", exc) from None
    return StackResult(stack.name, "cancel", {}, {})
