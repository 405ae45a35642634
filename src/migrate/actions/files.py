"""`files`: write generated files (CI workflows, dev environment) from templates.

The plan diffs the rendered content against the file on disk. `prepare`
keeps the previous content in the receipt so `rollback` restores it (or
removes a file that did not exist); a file edited after apply is saved under
`.migrate/backups/files/` before it is restored, so nothing is lost.
"""

from __future__ import annotations

import base64
import contextlib
import difflib
import hashlib
import os
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from migrate.engine.change import Change, Receipt
from migrate.errors import ActionError, UserError

if TYPE_CHECKING:
    from migrate.engine.context import Context
    from migrate.roadmap import Task


class FileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    template: Annotated[str, Field(description="Template path under templates/, e.g. ci/x.j2")]
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
        params = FilesParams.model_validate(ctx.expand(task.with_))
        changes = []
        for spec in params.files:
            content = ctx.render(spec.template, task=task)
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
        if not target.is_file():
            return {**receipt, "previous": None, "previous_mode": None}
        return {
            **receipt,
            "previous": base64.b64encode(target.read_bytes()).decode(),
            "previous_mode": f"{target.stat().st_mode & 0o777:o}",
        }

    def apply(self, ctx: Context, change: Change) -> Receipt:
        content = str(change.data["content"]).encode()
        target = ctx.project_dir / change.data["path"]
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
            for directory in receipt.get("created_dirs", []):
                with contextlib.suppress(OSError):  # not empty: something else lives there
                    (ctx.project_dir / directory).rmdir()
            return
        mode = receipt.get("previous_mode")
        _write_atomic(target, base64.b64decode(previous), int(mode, 8) if mode else None)


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
