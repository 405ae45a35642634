"""An image's build context: what the engine builds it from, and its hash.

A plugin's context is assembled in memory, never in the plugin's directory:

    Dockerfile          rendered from templates/docker/Dockerfile.j2
    .dockerignore       templates/docker/.dockerignore (migrate applies it itself)
    requirements.txt    the runtime's pinned libraries (src/migrate/runtime/requirements.txt),
                        then plugin.yaml `requirements` + the plugin's requirements.txt
    runtime/migrate_runtime/   the runtime (src/migrate/runtime/**/*.py)
    plugin/...          the plugin's files, less ignored ones
    wheels/...          the wheelhouse, added at build time only

The orchestrator's context is the same without plugin/: its Dockerfile comes from
templates/docker/Dockerfile.orchestrator.j2 and its requirements.txt adds
src/migrate/runtime/requirements-orchestrator.txt (the run store's driver).

The hash (DESIGN 3.7) is the SHA-256 of a canonical listing of every file
above but the wheelhouse: path, executable bit and content digest, sorted by
path. So it does not depend on file order, timestamps or the machine, and
computing it needs neither the network nor the engine (a no-op build is
fast). The wheelhouse is stood for by requirements.txt, the exact list it is
resolved from: pin versions there to pin the image.
"""

from __future__ import annotations

import ast
import fnmatch
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from migrate.images.errors import PluginImageError

if TYPE_CHECKING:
    from migrate.engine.context import Context
    from migrate.inventory import Plugin

DOCKERFILE_TEMPLATE = "docker/Dockerfile.j2"
ORCHESTRATOR_TEMPLATE = "docker/Dockerfile.orchestrator.j2"
IGNORE_TEMPLATE = "docker/.dockerignore"
USER = "10001:10001"  # numeric: works on base images without useradd or /etc/passwd entries
PORT = 8080
RUNTIME_PACKAGE = "migrate_runtime"
RUNTIME_REQUIREMENTS = "requirements.txt"
ORCHESTRATOR_REQUIREMENTS = "requirements-orchestrator.txt"
SERVICE = "service"  # the role of a plugin image (it runs as worker too: MIGRATE_ROLE)
ORCHESTRATOR = "orchestrator"

# Excluded whatever a project's .dockerignore says: secrets and junk never enter a context.
ALWAYS_EXCLUDED: tuple[str, ...] = (
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_rsa*",
    "id_ed25519*",
    "id_ecdsa*",
    ".netrc",
    ".pypirc",
    ".git",
    ".hg",
    ".svn",
    "__pycache__",
    "*.pyc",
    "*.pyo",
    ".venv",
    ".DS_Store",
)


@dataclass(frozen=True)
class ContextFile:
    path: str  # '/'-separated, relative to the context root
    data: bytes
    executable: bool = False

    @property
    def mode(self) -> int:
        return 0o755 if self.executable else 0o644


@dataclass(frozen=True)
class BuildContext:
    plugin: Plugin | None  # None: the orchestrator's context
    files: tuple[ContextFile, ...]  # sorted by path
    requirements: tuple[str, ...]
    digest: str  # SHA-256 hex of the canonical listing

    @property
    def role(self) -> str:
        return SERVICE if self.plugin is not None else ORCHESTRATOR

    @property
    def short_hash(self) -> str:
        """The tag: the first 12 hex digits of the context's SHA-256."""
        return self.digest[:12]

    @property
    def paths(self) -> list[str]:
        return [f.path for f in self.files]

    @property
    def dockerfile(self) -> str:
        return next(f.data for f in self.files if f.path == "Dockerfile").decode()

    def tar(self, wheels: Iterable[Path] = ()) -> bytes:
        """The context as a tar stream, reproducible byte for byte (no times, no owners)."""
        import io
        import tarfile  # here: a no-op build makes no tar stream

        extra = [ContextFile(f"wheels/{w.name}", w.read_bytes()) for w in sorted(wheels)]
        if self.requirements and not extra:
            extra = [ContextFile("wheels/.keep", b"")]
        entries = sorted([*self.files, *extra], key=lambda f: f.path)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for directory in _directories(e.path for e in entries):
                info = tarfile.TarInfo(directory)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            for entry in entries:
                info = tarfile.TarInfo(entry.path)
                info.size, info.mode = len(entry.data), entry.mode
                tar.addfile(info, io.BytesIO(entry.data))
        return buffer.getvalue()


def _directories(paths: Iterable[str]) -> list[str]:
    found: set[str] = set()
    for path in paths:
        found.update(str(p) for p in PurePosixPath(path).parents if str(p) != ".")
    return sorted(found)


def digest(files: Iterable[ContextFile]) -> str:
    """SHA-256 of the canonical listing: `path NUL mode NUL sha256(content)` a line, sorted."""
    listing = hashlib.sha256()
    for entry in sorted(files, key=lambda f: f.path):
        content = hashlib.sha256(entry.data).hexdigest()
        listing.update(f"{entry.path}\0{entry.mode:o}\0{content}\n".encode())
    return listing.hexdigest()


def ignore_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore: one a line; blank lines and # comments skipped."""
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            patterns.append(line.strip("/"))
    return patterns


def is_excluded(relative: PurePosixPath, patterns: Iterable[str]) -> bool:
    """Whether a plugin file is left out: a pattern matches its whole relative path,
    or any one of its components (so `.env` and `__pycache__` match at any depth)."""
    text = relative.as_posix()
    for pattern in (*ALWAYS_EXCLUDED, *patterns):
        if fnmatch.fnmatchcase(text, pattern):
            return True
        if "/" not in pattern and any(fnmatch.fnmatchcase(p, pattern) for p in relative.parts):
            return True
    return False


def plugin_files(plugin_dir: Path, patterns: Iterable[str]) -> Iterator[ContextFile]:
    """The plugin's regular files, less excluded ones. Symbolic links are not followed:
    they could bring in files from outside the plugin."""
    patterns = list(patterns)
    for path in sorted(plugin_dir.rglob("*")):
        relative = PurePosixPath(path.relative_to(plugin_dir).as_posix())
        if path.is_symlink() or not path.is_file() or is_excluded(relative, patterns):
            continue
        executable = bool(path.stat().st_mode & 0o111)
        yield ContextFile(f"plugin/{relative}", path.read_bytes(), executable)


def runtime_dir() -> Path:
    from migrate import runtime

    return Path(runtime.__file__).parent


def runtime_files() -> list[ContextFile]:
    """The runtime, as package `migrate_runtime` under runtime/: every module of
    src/migrate/runtime and its subpackages (bus/, ...), Python files only."""
    here = runtime_dir()
    return [
        ContextFile(f"runtime/{RUNTIME_PACKAGE}/{p.relative_to(here).as_posix()}", p.read_bytes())
        for p in sorted(here.rglob("*.py"))
        if "__pycache__" not in p.relative_to(here).parts
    ]


def _requirement_lines(text: str) -> list[str]:
    """The requirements of a requirements.txt: comments and blank lines skipped."""
    found = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            found.append(line)
    return found


def runtime_requirements(role: str = SERVICE) -> list[str]:
    """The runtime's pinned libraries (src/migrate/runtime/requirements.txt); the
    orchestrator adds requirements-orchestrator.txt."""
    names = [RUNTIME_REQUIREMENTS] + ([ORCHESTRATOR_REQUIREMENTS] if role == ORCHESTRATOR else [])
    found: list[str] = []
    for name in names:
        found.extend(_requirement_lines((runtime_dir() / name).read_text(encoding="utf-8")))
    return found


def requirements_of(plugin: Plugin) -> list[str]:
    """plugin.yaml `requirements`, then the lines of requirements.txt; each once, in order."""
    found: list[str] = list(plugin.manifest.requirements)
    text_file = plugin.path / "requirements.txt"
    if text_file.is_file():
        found.extend(_requirement_lines(text_file.read_text(encoding="utf-8")))
    return _once(found)


def _once(requirements: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(r.strip() for r in requirements if r.strip()))


def check_entrypoint(plugin: Plugin) -> None:
    """The entrypoint's module exists and defines its function (read, never imported)."""
    module, _, function = plugin.entrypoint.partition(":")
    manifest = plugin.path / "plugin.yaml"
    hint = (
        f"fix `entrypoint` in {manifest}"
        if manifest.is_file()
        else f"add {manifest} with `entrypoint: module:function` (the default is plugin:handle)"
    )
    source = plugin.module_file
    if source is None:
        expected = module.replace(".", "/")
        raise PluginImageError(
            plugin.name,
            f"entrypoint {plugin.entrypoint}: no module {module!r} in {plugin.path} "
            f"(looked for {expected}.py and {expected}/__init__.py)",
            hint=hint,
        )
    try:
        tree = ast.parse(source.read_bytes(), filename=str(source))
    except SyntaxError as exc:
        raise PluginImageError(
            plugin.name,
            f"{source}:{exc.lineno}: the entrypoint's module does not parse: {exc.msg}",
            hint="fix the syntax error",
        ) from None
    if function not in _top_level_names(tree):
        raise PluginImageError(
            plugin.name,
            f"entrypoint {plugin.entrypoint}: {source} defines no {function!r}",
            hint=f"define `def {function}(payload: dict) -> dict` there, or {hint}",
        )


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def assemble(ctx: Context, plugin: Plugin) -> BuildContext:
    """The build context of `plugin`. Pure: reads the plugin, the templates and the runtime.

    The requirements are the runtime's and the plugin's, resolved together (one
    wheelhouse): a plugin pin that conflicts with the runtime's fails to resolve.
    Raises `PluginImageError` when the plugin cannot be built (missing entrypoint).

    Assembled once per context (render, the images plan and the files task all ask):
    kept on `ctx` with the status of every file it reads (`_inputs`), so a file
    changed since is assembled again.
    """
    key = ("plugin", plugin.name, str(plugin.path), repr(plugin.manifest))
    built = _remembered(ctx, key, plugin.path, lambda: _assemble(ctx, plugin))
    if built.plugin is not plugin:  # an equal plugin: the context names the caller's
        from dataclasses import replace

        built = replace(built, plugin=plugin)
    return built


def _remembered(
    ctx: Context, key: tuple[str, ...], tree: Path | None, make: Callable[[], BuildContext]
) -> BuildContext:
    """`make()`, or what it gave for `key` on this context when no file it reads changed."""
    memo: dict[tuple[str, ...], tuple[object, BuildContext]] = ctx.__dict__.setdefault(
        "_build_contexts", {}
    )
    inputs = _inputs(ctx, tree)
    found = memo.get(key)
    if found is not None and inputs is not None and found[0] == inputs:
        return found[1]
    built = make()
    if inputs is not None and inputs == _inputs(ctx, tree):  # nothing changed meanwhile
        memo[key] = (inputs, built)
    return built


def _inputs(ctx: Context, tree: Path | None) -> object:
    """The status (mode, size, mtime, inode, ctime) of everything an assembly reads: the
    plugin's tree, the runtime's, the docker/ templates where the context's templates
    are looked up (engine.context), `migrate dev up`'s state and the config (what the
    templates' variables come from); None (nothing is kept) when a tree cannot be read
    or holds a symbolic link."""
    import os
    import stat

    from migrate.resources import resource_path

    def status(path: str) -> tuple[int, ...] | None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(st.st_mode):
            raise _Unkept(path)
        return (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)

    def walk(root: Path) -> list[object]:
        found: list[object] = [status(str(root))]
        for directory, names, files in os.walk(root, onerror=_raise):
            names.sort()
            for name in [*names, *sorted(files)]:
                found.append((directory, name, status(os.path.join(directory, name))))
        return found

    try:
        searched = dict.fromkeys([ctx.project_dir / "templates", resource_path("templates")])
        templates = [
            status(str(root / name))
            for root in searched
            for name in (DOCKERFILE_TEMPLATE, ORCHESTRATOR_TEMPLATE, IGNORE_TEMPLATE)
        ]
        return (
            walk(tree) if tree is not None else None,
            walk(runtime_dir()),
            templates,
            status(str(ctx.state_dir / "dev.json")),  # target.orchestrator_url may come from it
            repr(ctx.config),
        )
    except (OSError, _Unkept):
        return None


class _Unkept(Exception):
    """Something an assembly reads that its status cannot vouch for (a symbolic link)."""


def _raise(error: OSError) -> None:
    raise error


def _assemble(ctx: Context, plugin: Plugin) -> BuildContext:
    check_entrypoint(plugin)
    requirements = _once([*runtime_requirements(SERVICE), *requirements_of(plugin)])
    ignore_text = ctx.render(IGNORE_TEMPLATE)
    dockerfile = ctx.render(
        DOCKERFILE_TEMPLATE,
        plugin=plugin,
        base_image=ctx.config.target.base_image,
        requirements=requirements,
        user=USER,
        port=PORT,
    )
    files = [
        *_common_files(dockerfile, ignore_text, requirements),
        *plugin_files(plugin.path, ignore_patterns(ignore_text)),
    ]
    return _context(plugin, files, requirements)


def assemble_orchestrator(ctx: Context) -> BuildContext:
    """The orchestrator's build context: the runtime, its requirements and the run
    store's driver, with MIGRATE_ROLE=orchestrator. Pure, and kept, like `assemble`."""
    return _remembered(ctx, ("orchestrator",), None, lambda: _assemble_orchestrator(ctx))


def _assemble_orchestrator(ctx: Context) -> BuildContext:
    from migrate import __version__

    requirements = _once(runtime_requirements(ORCHESTRATOR))
    dockerfile = ctx.render(
        ORCHESTRATOR_TEMPLATE,
        migrate_version=__version__,
        base_image=ctx.config.target.base_image,
        requirements=requirements,
        user=USER,
        port=PORT,
    )
    files = _common_files(dockerfile, ctx.render(IGNORE_TEMPLATE), requirements)
    return _context(None, files, requirements)


def _common_files(dockerfile: str, ignore_text: str, requirements: list[str]) -> list[ContextFile]:
    return [
        ContextFile("Dockerfile", dockerfile.encode()),
        ContextFile(".dockerignore", ignore_text.encode()),
        ContextFile("requirements.txt", "".join(f"{r}\n" for r in requirements).encode()),
        *runtime_files(),
    ]


def _context(
    plugin: Plugin | None, files: list[ContextFile], requirements: list[str]
) -> BuildContext:
    files.sort(key=lambda f: f.path)
    return BuildContext(
        plugin=plugin, files=tuple(files), requirements=tuple(requirements), digest=digest(files)
    )
