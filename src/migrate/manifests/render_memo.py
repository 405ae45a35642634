"""The render memo: what each `manifests`/`infra` task rendered, kept across runs, so a
`plan` with nothing changed renders nothing (migrate.manifests.render renders).

Imports only what it reads back (the model): a plan whose renders are all kept never
loads Jinja2, the facts or the templates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrate.manifests.model import HelmRelease, Manifest, TaskManifests

if TYPE_CHECKING:
    from collections.abc import Iterable

    from migrate.engine.context import Context


#: the shape of a memo entry; another value reads as not kept
MEMO_FORMAT = 1
#: directories a render never reads: the journal's database, Pulumi's backend
_STATE_SKIP = ("postgres", "pulumi")
#: never part of what renders (an image's build context leaves them out too)
_NAME_SKIP = frozenset({".git", "__pycache__"})
#: libraries whose installed files are part of the key: the templates' (Jinja2, YAML) and
#: the schema checks' (kubernetes-validate and what it checks with)
_LIBRARIES = ("jinja2", "markupsafe", "yaml", "kubernetes_validate", "jsonschema", "referencing")
#: environment variables left out of the key: secrets, which no render uses
_SECRET_WORDS = ("PASSWORD", "TOKEN", "SECRET", "DATABASE_URL", "PASSPHRASE")


class RenderMemo:
    """What each `manifests`/`infra` task rendered, and the values other renders made
    (`value`/`keep`: the images' tags, the generated files' content), kept in the cache
    directory (migrate.state.cache) under one key of everything a render can read: the
    code of migrate, its installed version and its template libraries, the packaged
    templates, and the status (size, mtime, inode, ctime) of every file of the project
    (`.migrate/` without its database and Pulumi directories) and of the application;
    the loaded config; the MIGRATE_*
    environment (secrets left out). A content change changes a file's ctime (and
    mtime), so an edit that keeps the size and mtime is still seen.

    Any change means a miss, and a miss renders as if there were no memo. A missing,
    garbled or foreign file reads as empty; a directory symlink in a tree (whose files
    the key cannot follow) or an object JSON cannot say exactly turns the memo off.
    """

    def __init__(self, ctx: Context) -> None:
        from migrate.state.cache import default_dir

        self.ctx = ctx
        self.directory = default_dir()
        self._identity: str | None = None
        self._computed = False
        # one file per project, replaced when the key changes (no file per key left over)
        self._slot = f"render-memo|{ctx.project_dir.resolve()}"
        self._entries: dict[str, Any] | None = None
        self._dirty = False
        # what this file's entries were saved as (a fresh random token on every save), and
        # the renders whose entry is the memo's (answered by `get`, or kept by `put`)
        self._generation: str | None = None
        self._served: dict[tuple[int, str], TaskManifests] = {}

    @property
    def identity(self) -> str | None:
        if not self._computed:
            self._computed = True
            if self.directory is not None:
                self._identity = _memo_identity(self.ctx, self.directory)
        return self._identity

    def _load(self) -> dict[str, Any]:
        if self._entries is None:
            from migrate.state.cache import load_value

            identity = self.identity
            found = load_value(self.directory, self._slot) if identity else None
            entries = found.get("entries") if isinstance(found, dict) else None
            fresh = isinstance(found, dict) and found.get("identity") == identity
            self._entries = entries if fresh and isinstance(entries, dict) else {}
            generation = found.get("generation") if fresh and isinstance(found, dict) else None
            self._generation = generation if isinstance(generation, str) and generation else None
        return self._entries

    def get(self, phase: int, task: str) -> tuple[TaskManifests, dict[str, Any]] | None:
        """What the task rendered and its blue-green tracks, or None (render it)."""
        if self.identity is None:
            return None
        entry = self._load().get(f"{phase}/{task}")
        try:
            kept = _from_entry(entry, phase, task, self.ctx.config.target.namespace)
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        if kept is not None:
            self._served[(phase, task)] = kept[0]
        return kept

    def set_identity(self, rendered: Iterable[TaskManifests]) -> str | None:
        """What says the content of `rendered` exactly, when every one of them is the very
        object `get` answered or `put` kept, and the entries are saved (the memo's key and
        the token of the save they are in), else None. The entries of one save never
        change: a render that differs is kept by a later save, under another token."""
        if self.identity is None or self._generation is None or self._dirty:
            return None
        for task in rendered:
            if self._served.get((task.phase, task.task)) is not task:
                return None
        return f"{self.identity}|{self._generation}"

    def put(self, rendered: TaskManifests, tracks: dict[str, Any]) -> None:
        if self.identity is None:
            return
        entry = _to_entry(rendered, tracks)
        if entry is None:
            self._served.pop((rendered.phase, rendered.task), None)
            return
        entries = self._load()
        key = f"{rendered.phase}/{rendered.task}"
        if entries.get(key) != entry:
            entries[key] = entry
            # what was kept about the task's objects (`keep_for`) was about the old ones
            for other in [k for k in entries if k.startswith(f"value|of|{key}|")]:
                del entries[other]
            self._dirty = True
        # the entry says `rendered` exactly (_to_entry: JSON types only; the phase, task
        # and namespace are the entry's own)
        self._served[(rendered.phase, rendered.task)] = rendered

    def kept(self, rendered: TaskManifests) -> bool:
        """Whether `rendered` is the very object `get` answered or `put` kept: what its
        entry says (then `value_for`/`keep_for` may answer about it)."""
        return (
            self.identity is not None
            and self._served.get((rendered.phase, rendered.task)) is rendered
        )

    def value_for(self, rendered: TaskManifests, key: str) -> Any:
        """What `keep_for` kept about `rendered`'s objects under `key`, or None (also when
        `rendered` is not the memo's own: `kept`)."""
        if not self.kept(rendered):
            return None
        return self.value(f"of|{rendered.phase}/{rendered.task}|{key}")

    def keep_for(self, rendered: TaskManifests, key: str, value: Any) -> None:
        """Keep `value` (plain JSON), made from nothing but `rendered`'s objects and what
        the identity covers, until the task's entry changes (`put` drops it then)."""
        if self.kept(rendered):
            self.keep(f"of|{rendered.phase}/{rendered.task}|{key}", value)

    def value(self, key: str) -> Any:
        """What `keep` kept under `key` (a plain JSON value) for this identity, or None."""
        if self.identity is None:
            return None
        entry = self._load().get(f"value|{key}")
        if isinstance(entry, dict) and entry.get("format") == MEMO_FORMAT:
            return entry.get("value")
        return None

    def keep(self, key: str, value: Any) -> None:
        """Keep `value` (plain JSON: str, list, dict) under `key` for this identity: what a
        render made from nothing but what the identity covers (an image's tag, a generated
        file's content)."""
        if self.identity is None:
            return
        entry = {"format": MEMO_FORMAT, "value": value}
        entries = self._load()
        if entries.get(f"value|{key}") != entry:
            entries[f"value|{key}"] = entry
            self._dirty = True

    def save(self) -> None:
        """Write the entries when something was added; never fails."""
        if not self._dirty or self.identity is None or self._entries is None:
            return
        import os

        from migrate.state.cache import save_value

        # a new token for every save: a set keyed by the old one (set_identity) is never
        # answered from what this save wrote
        self._generation = os.urandom(16).hex()
        document = {
            "identity": self.identity,
            "generation": self._generation,
            "entries": self._entries,
        }
        save_value(self.directory, self._slot, document)
        self._dirty = False


def render_memo(ctx: Context) -> RenderMemo:
    """The context's memo (one per context: its key is computed once)."""
    memo: RenderMemo | None = ctx.__dict__.get("_render_memo")
    if memo is None:
        memo = ctx.__dict__["_render_memo"] = RenderMemo(ctx)
    return memo


def save_render_memo(ctx: Context) -> None:
    """Write the context's memo, when it has one that changed."""
    memo: RenderMemo | None = ctx.__dict__.get("_render_memo")
    if memo is not None:
        memo.save()


def _to_entry(rendered: TaskManifests, tracks: dict[str, Any]) -> dict[str, Any] | None:
    from migrate.manifests.validate import _plain

    if any(m.phase != rendered.phase or m.task != rendered.task for m in rendered.manifests):
        return None  # an entry gives every object the task's phase and id
    entry = {
        "format": MEMO_FORMAT,
        "components": list(rendered.components),
        "manifests": [
            {
                "component": m.component,
                "template": m.template,
                "obj": m.obj,
                "app_namespace": m.app_namespace,
            }
            for m in rendered.manifests
        ],
        "releases": [
            {**r.to_dict(), "component": r.component, "phase": r.phase, "task": r.task}
            for r in rendered.releases
        ],
        "tracks": tracks,
    }
    if not _plain(entry):
        return None  # JSON would not give the same back
    return entry


def _from_entry(
    entry: Any, phase: int, task: str, namespace: str
) -> tuple[TaskManifests, dict[str, Any]] | None:
    if not isinstance(entry, dict) or entry.get("format") != MEMO_FORMAT:
        return None
    manifests = tuple(
        Manifest(
            phase=phase,
            task=task,
            component=str(m["component"]),
            template=str(m["template"]),
            obj=dict(m["obj"]),
            app_namespace=str(m["app_namespace"]),
        )
        for m in entry["manifests"]
    )
    releases = tuple(HelmRelease(**dict(r)) for r in entry["releases"])
    tracks = entry["tracks"]
    if not isinstance(tracks, dict) or any(m.app_namespace != namespace for m in manifests):
        return None
    rendered = TaskManifests(
        phase=phase,
        task=task,
        components=tuple(str(c) for c in entry["components"]),
        manifests=manifests,
        releases=releases,
    )
    return rendered, tracks


def _memo_identity(ctx: Context, directory: Path | None) -> str | None:
    """The sha256 of everything a render reads (see RenderMemo), or None when the trees
    cannot be described (a directory symlink, an unreadable directory). `directory`: the
    cache's, left out of the trees (the memo's own file must not change its key)."""
    import hashlib
    import os
    import sys
    from importlib.util import find_spec

    import migrate
    from migrate.resources import resource_path

    try:
        state = ctx.state_dir.resolve()
        skip = frozenset(state / name for name in _STATE_SKIP) | frozenset(
            [directory.resolve()] if directory is not None else []
        )
        roots = [
            Path(migrate.__file__).resolve().parent,
            resource_path("templates"),
            ctx.project_dir.resolve(),
            ctx.source_dir,
            (ctx.project_dir / ctx.config.roadmap).resolve().parent,
        ]
        libraries = []
        # the template libraries, and the schema checks' (a plan keeps what the checks
        # said of a kept render: actions.manifests); the schemas directory's listing
        # is the Kubernetes versions the checks know
        for name in _LIBRARIES:
            spec = find_spec(name)
            origin = spec.origin if spec is not None else None
            libraries.append(_status(Path(origin)) if origin else None)
            if name == "kubernetes_validate" and origin:
                schemas = Path(origin).parent / "kubernetes-json-schema"
                libraries.append(_status(schemas) if schemas.exists() else None)
        parts = {
            "format": MEMO_FORMAT,
            "python": sys.version,
            # what the templates see as `migrate.version` (the orchestrator's image, the
            # generated files): the installed distribution's, not in the code's tree
            "migrate": migrate.installed_version(),
            "trees": [[str(root), _tree(root, skip)] for root in roots],
            "libraries": libraries,
            "config": ctx.config.model_dump(mode="json", exclude={"target": {"database_url"}}),
            "environment": sorted(
                (k, v)
                for k, v in os.environ.items()
                if k.startswith("MIGRATE_") and not any(w in k for w in _SECRET_WORDS)
            ),
        }
    except (_Undescribable, OSError, ValueError, TypeError):
        return None
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return "render|" + hashlib.sha256(text.encode()).hexdigest()


class _Undescribable(Exception):
    """A tree the key cannot describe by its files' status."""


def _status(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


def _tree(root: Path, skip: frozenset[Path]) -> list[Any]:
    """[relative path, mode, size, mtime_ns, inode, ctime_ns] of every file and directory
    under `root` (following file symlinks), sorted; [] when `root` does not exist."""
    import os
    import stat

    if not root.exists():
        return []
    found: list[Any] = [["", *_status(root)]]
    pending = [root]
    while pending:
        directory = pending.pop()
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                path = Path(entry.path)
                if entry.name in _NAME_SKIP or path in skip:
                    continue
                try:
                    st = entry.stat()  # follows a symlink: its target's status
                except FileNotFoundError:  # a dangling symlink
                    found.append([path.relative_to(root).as_posix(), "dangling"])
                    continue
                if stat.S_ISDIR(st.st_mode):
                    if entry.is_symlink():
                        raise _Undescribable(entry.path)
                    pending.append(path)
                found.append(
                    [
                        path.relative_to(root).as_posix(),
                        st.st_mode,
                        st.st_size,
                        st.st_mtime_ns,
                        st.st_ino,
                        st.st_ctime_ns,
                    ]
                )
    found.sort(key=lambda item: str(item[0]))
    return found
