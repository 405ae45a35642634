"""`files`: write generated files (CI workflows, dev environment) from templates.

The plan diffs the rendered content against the file on disk. `prepare`
keeps the previous content in the receipt so `rollback` restores it (or
removes a file that did not exist); a file edited after apply is saved under
`.migrate/backups/files/` before it is restored, so nothing is lost.

Templates see, besides the project's variables, `migrate` (`distribution`,
`version`, `install`: what the generated pipelines `pip install`, always pinned;
`ci.install` in migrate.yaml) and `compose` (the Compose model of `migrate dev up`,
dev/compose.py; built only when a template uses it).

A spec with `secrets: [NAME, ...]` instead of `template` writes an env file of
generated secrets (`NAME=<random>`, mode 0600): created when absent, a missing name
appended, a present value never changed. Its content is never in a plan, a diff or
the journal; rollback removes what apply added.
"""

from __future__ import annotations

import base64
import contextlib
import difflib
import hashlib
import os
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from migrate.engine.change import Change, Receipt
from migrate.errors import ActionError, UserError

if TYPE_CHECKING:
    from migrate.engine.context import Context
    from migrate.roadmap import Task


class FileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    template: Annotated[
        str | None, Field(description="Template path under templates/, e.g. ci/x.j2")
    ] = None
    secrets: Annotated[
        list[Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]] | None,
        Field(
            description="Instead of a template: an env file of these variables, each a "
            "generated secret, mode 0600, never overwritten",
            min_length=1,
        ),
    ] = None
    path: Annotated[str, Field(description="Where to write it, relative to the project")]
    mode: Annotated[
        str | None, Field(description="Octal permissions such as '0755'", pattern=r"^0?[0-7]{3}$")
    ] = None

    @field_validator("mode", mode="before")
    @classmethod
    def _quoted_mode(cls, value: object) -> object:
        if isinstance(value, int):
            raise ValueError(
                "write the mode as a quoted string, e.g. '0755' (YAML reads an unquoted 0755 as "
                f"the number {0o755})"
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> FileSpec:
        if (self.template is None) == (self.secrets is None):
            raise ValueError("give exactly one of `template` and `secrets`")
        if self.secrets is not None and self.mode not in (None, "0600", "600"):
            raise ValueError("a secrets file is written with mode 0600; leave `mode` out")
        return self

    @field_validator("path")
    @classmethod
    def _inside_project(cls, value: str) -> str:
        path = PurePosixPath(value)
        if path.is_absolute() or ".." in path.parts or not path.parts:
            raise ValueError(
                f"{value!r} must be a relative path inside the project (no leading / and no ..)"
            )
        return value


class FilesParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    files: Annotated[list[FileSpec], Field(min_length=1)]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FilesAction:
    kind: ClassVar[str] = "files"
    Params: ClassVar[type[BaseModel] | None] = FilesParams

    def plan(self, ctx: Context, task: Task) -> list[Change]:
        from migrate.actions.base import params as task_params

        params: FilesParams = task_params(ctx, task)  # checked once, after expansion
        changes = []
        variables: dict[str, Any] | None = None
        for spec in params.files:
            if spec.secrets is not None:
                changes.append(_plan_secrets(ctx, task, spec.path, spec.secrets))
                continue
            assert spec.template is not None  # one of the two: FileSpec._one_source
            content = _kept_render(ctx, task, spec.template)
            if content is None:
                if variables is None:
                    variables = template_variables(ctx)
                content = ctx.render(spec.template, task=task, **variables)
                _keep_render(ctx, task, spec.template, content)
            target = ctx.project_dir / spec.path
            data = {"path": spec.path, "content": content, "mode": spec.mode}
            resource = f"file:{spec.path}"
            lines = content.count("\n")
            if target.is_dir():
                raise UserError(
                    f"{spec.path} is a directory, so the file cannot be written there",
                    hint=f"change `path` of task {task.id}, or move the directory away",
                )
            current = target.read_bytes() if target.is_file() else None
            if current is None:
                op, summary, detail = "create", f"write {lines} lines from {spec.template}", None
            elif current == content.encode() and not _mode_differs(target, spec.mode):
                op, summary, detail = "noop", "up to date", None
            else:
                op, summary = "update", f"rewrite from {spec.template}"
                detail = _diff(current, content, spec.path)
            changes.append(
                Change(
                    task=task.id,
                    action=self.kind,
                    op=op,  # type: ignore[arg-type]
                    resource=resource,
                    summary=summary,
                    data=data,
                    detail=detail,
                )
            )
        return changes

    def prepare(self, ctx: Context, change: Change) -> Receipt:
        target = ctx.project_dir / change.data["path"]
        # directories apply will create, innermost first, so rollback can remove them
        created = [
            parent.as_posix()
            for parent in PurePosixPath(change.data["path"]).parents
            if parent != PurePosixPath(".") and not (ctx.project_dir / parent).exists()
        ]
        receipt: Receipt = {"path": change.data["path"], "created_dirs": created}
        if change.data.get("secrets") is not None:  # never its content: it holds secrets
            return {
                **receipt,
                "secrets_file": True,
                "existed": target.is_file(),
                "added": list(change.data["secrets"]),
                "previous_mode": f"{target.stat().st_mode & 0o777:o}" if target.is_file() else None,
            }
        if not target.is_file():
            return {**receipt, "previous": None, "previous_mode": None}
        return {
            **receipt,
            "previous": base64.b64encode(target.read_bytes()).decode(),
            "previous_mode": f"{target.stat().st_mode & 0o777:o}",
        }

    def apply(self, ctx: Context, change: Change) -> Receipt:
        target = ctx.project_dir / change.data["path"]
        if change.data.get("secrets") is not None:
            return _apply_secrets(change, target)
        content = str(change.data["content"]).encode()
        mode = change.data.get("mode")
        try:
            # without `mode`, an existing file keeps its permissions
            keep = target.stat().st_mode & 0o777 if target.is_file() else None
            _write_atomic(target, content, int(mode, 8) if mode else keep)
        except OSError as exc:
            raise ActionError(
                change.task,
                f"cannot write {target}: {exc.strerror}",
                hint="make sure its directory can be created and written to",
            ) from None
        return {"written_sha256": _sha256(content)}

    def rollback(self, ctx: Context, receipt: Receipt) -> None:
        target = ctx.project_dir / receipt["path"]
        if receipt.get("secrets_file"):
            if receipt.get("existed"):
                _remove_variables(target, receipt.get("added", []), receipt.get("previous_mode"))
                return
            target.unlink(missing_ok=True)
            _remove_dirs(ctx, receipt)
            return
        written = receipt.get("written_sha256")
        if target.is_file() and written and _sha256(target.read_bytes()) != written:
            keep = ctx.state_dir / "backups" / "files" / f"{receipt['path']}.{written[:12]}"
            keep.parent.mkdir(parents=True, exist_ok=True)
            keep.write_bytes(target.read_bytes())
            ctx.reporter.warn(
                f"{receipt['path']} was edited after apply; its edited content is saved as {keep}"
            )
        previous = receipt.get("previous")
        if previous is None:
            target.unlink(missing_ok=True)
            _remove_dirs(ctx, receipt)
            return
        mode = receipt.get("previous_mode")
        _write_atomic(target, base64.b64decode(previous), int(mode, 8) if mode else None)


def _render_key(task: Task, template: str) -> str:
    described = hashlib.sha256(repr(task).encode()).hexdigest()[:16]
    return f"files|{task.id}|{described}|{template}"


def _kept_render(ctx: Context, task: Task, template: str) -> str | None:
    """What a previous plan rendered from `template` for `task` when nothing it reads
    changed since (the render memo's key: migrate.manifests.render_memo), else None. The
    file on disk is compared with it all the same."""
    from migrate.manifests.render_memo import render_memo

    kept = render_memo(ctx).value(_render_key(task, template))
    return kept if isinstance(kept, str) else None


def _keep_render(ctx: Context, task: Task, template: str, content: str) -> None:
    from migrate.manifests.render_memo import render_memo

    render_memo(ctx).keep(_render_key(task, template), content)


def _mode_differs(target: Path, mode: str | None) -> bool:
    return mode is not None and (target.stat().st_mode & 0o777) != int(mode, 8)


def _diff(current: bytes, content: str, path: str) -> str:
    old = current.decode("utf-8", errors="replace").splitlines(keepends=True)
    new = content.splitlines(keepends=True)
    return "".join(difflib.unified_diff(old, new, f"a/{path}", f"b/{path}"))


def _write_atomic(target: Path, content: bytes, mode: int | None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.migrate-tmp")
    with open(tmp, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    if mode is not None:
        os.chmod(tmp, mode)
    os.replace(tmp, target)


def template_variables(ctx: Context) -> dict[str, Any]:
    """`migrate` and `compose`, for the templates of generated files."""
    from migrate import DISTRIBUTION, installed_version
    from migrate.dev.compose import LazyCompose
    from migrate.install import install

    try:
        pinned = install(ctx.config.ci.install)
    except ValueError as exc:  # checked when migrate.yaml is loaded; kept for safety
        raise UserError(f"ci.install: {exc}", key="ci.install") from None
    return {
        "migrate": {
            "distribution": DISTRIBUTION,
            "version": installed_version(),
            "install": pinned,
        },
        "compose": LazyCompose(ctx),
    }


def _remove_dirs(ctx: Context, receipt: Receipt) -> None:
    for directory in receipt.get("created_dirs", []):
        with contextlib.suppress(OSError):  # not empty: something else lives there
            (ctx.project_dir / directory).rmdir()


# --- env files of generated secrets ----------------------------------------------------

_SECRET_MODE = 0o600


def _defined(text: str) -> set[str]:
    """The variables an env file defines (`NAME=...`, `export NAME=...`)."""
    names = set()
    for line in text.splitlines():
        line = line.strip().removeprefix("export ").strip()
        if line and not line.startswith("#") and "=" in line:
            names.add(line.split("=", 1)[0].strip())
    return names


def _plan_secrets(ctx: Context, task: Task, path: str, names: list[str]) -> Change:
    target = ctx.project_dir / path
    if target.is_dir():
        raise UserError(
            f"{path} is a directory, so the file cannot be written there",
            hint=f"change `path` of task {task.id}, or move the directory away",
        )
    resource = f"file:{path}"
    if not target.is_file():
        op, missing = "create", list(names)
        summary = f"generate {', '.join(names)} (mode 0600)"
    else:
        missing = [n for n in names if n not in _defined(target.read_text(errors="replace"))]
        loose = (target.stat().st_mode & 0o777) != _SECRET_MODE
        if not missing and not loose:
            return Change(
                task=task.id,
                action="files",
                op="noop",
                resource=resource,
                summary="up to date (its secrets are kept as they are)",
                data={"path": path, "secrets": []},
            )
        op = "update"
        parts = [f"add {', '.join(missing)}"] if missing else []
        summary = "; ".join([*parts, *(["make it mode 0600"] if loose else [])])
    return Change(
        task=task.id,
        action="files",
        op=op,  # type: ignore[arg-type]
        resource=resource,
        summary=summary,
        data={"path": path, "secrets": missing},
    )


def _apply_secrets(change: Change, target: Path) -> Receipt:
    import secrets

    names = list(change.data["secrets"])
    current = target.read_bytes() if target.is_file() else b""
    if current and not current.endswith(b"\n"):
        current += b"\n"
    lines = "".join(f"{name}={secrets.token_urlsafe(24)}\n" for name in names)
    try:
        _write_private(target, current + lines.encode())
    except OSError as exc:
        raise ActionError(
            change.task,
            f"cannot write {target}: {exc.strerror}",
            hint="make sure its directory can be created and written to",
        ) from None
    return {"secrets_written": names}


def _write_private(target: Path, content: bytes) -> None:
    """Like `_write_atomic`, with the file mode 0600 from its creation on."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.migrate-tmp")
    tmp.unlink(missing_ok=True)
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _SECRET_MODE)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, _SECRET_MODE)  # whatever the umask
    os.replace(tmp, target)


def _remove_variables(target: Path, names: list[str], mode: str | None) -> None:
    if not target.is_file():
        return
    kept = [
        line
        for line in target.read_text(errors="replace").splitlines(keepends=True)
        if line.strip().removeprefix("export ").split("=", 1)[0].strip() not in names
    ]
    _write_private(target, "".join(kept).encode())
    if mode:
        os.chmod(target, int(mode, 8))
