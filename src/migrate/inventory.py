"""What the legacy application holds: its plugins and its datasets (DESIGN 3.1)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from migrate.errors import InventoryError

DATA_FORMATS: dict[str, str] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".yaml": "yaml",
    ".yml": "yaml",
}
_ENTRYPOINT = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
)
_SKIP_DIRS = {"__pycache__", ".git", ".venv", "node_modules"}


class Events(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    consumes: list[str] = []
    produces: list[str] = []


class PluginManifest(BaseModel):
    """`plugins/<plugin>/plugin.yaml`; every key is optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str | None = None
    version: str | None = None
    entrypoint: Annotated[str, Field(description="module:function")] = "plugin:handle"
    description: str = ""
    requirements: list[str] = []
    events: Events = Events()

    @field_validator("entrypoint")
    @classmethod
    def _entrypoint(cls, value: str) -> str:
        if not _ENTRYPOINT.match(value):
            raise ValueError(
                f"{value!r} is not an entrypoint: write module:function, e.g. plugin:handle"
            )
        return value

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value


@dataclass(frozen=True)
class Plugin:
    name: str
    path: Path
    manifest: PluginManifest

    @property
    def version(self) -> str | None:
        return self.manifest.version

    @property
    def entrypoint(self) -> str:
        return self.manifest.entrypoint

    @property
    def module_file(self) -> Path | None:
        """The file or package of the entrypoint's module, when it exists."""
        module = self.entrypoint.split(":", 1)[0].replace(".", "/")
        for candidate in (self.path / f"{module}.py", self.path / module / "__init__.py"):
            if candidate.is_file():
                return candidate
        return None


@dataclass(frozen=True)
class DataFile:
    path: Path
    relative: str  # relative to the data directory, '/'-separated
    format: str
    size: int


@dataclass(frozen=True)
class Dataset:
    name: str  # data/a/b -> "a/b"
    path: Path
    files: tuple[DataFile, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def formats(self) -> list[str]:
        return sorted({f.format for f in self.files})


@dataclass(frozen=True)
class Inventory:
    root: Path
    plugins: tuple[Plugin, ...] = field(default_factory=tuple)
    datasets: tuple[Dataset, ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = field(default_factory=tuple)  # e.g. symbolic links not followed

    def plugin(self, name: str) -> Plugin:
        for plugin in self.plugins:
            if plugin.name == name:
                return plugin
        raise InventoryError(
            f"no plugin {name!r} in {self.root / 'plugins'}",
            hint=f"plugins: {', '.join(p.name for p in self.plugins) or 'none'}",
        )


def scan(root: Path) -> Inventory:
    """Read the legacy application at `root`: plugins/ and data/."""
    if not root.is_dir():
        raise InventoryError(
            f"the source application {root} does not exist or is not a directory",
            hint="give the application's directory with --source, or fix source.path in "
            "migrate.yaml",
        )
    plugins_dir, data_dir = root / "plugins", root / "data"
    if not plugins_dir.is_dir() and not data_dir.is_dir():
        raise InventoryError(
            f"{root} has neither plugins/ nor data/: it does not look like a legacy application",
            hint="the expected layout is APP/plugins/<plugin>/ and APP/data/<dataset>/",
        )
    warnings: list[str] = []
    datasets = tuple(_datasets(root, data_dir, warnings))
    _check_tables(datasets)
    plugins = tuple(_plugins(plugins_dir))
    for plugin in plugins:
        if "entrypoint" not in plugin.manifest.model_fields_set and plugin.module_file is None:
            warnings.append(
                f"{_manifest_or_dir(plugin)}: no entrypoint is set, so migrate calls the default "
                f"{plugin.entrypoint}, but {plugin.path}/plugin.py does not exist; set "
                "`entrypoint: module:function` in plugin.yaml"
            )
    if not plugins and datasets:
        warnings.append(
            f"no plugins in {plugins_dir}: only the data is migrated; the image, service and "
            "ingress tasks have nothing to do (add plugins/<name>/ with a plugin.py, or remove "
            "those tasks from the roadmap)"
        )
    return Inventory(root=root, plugins=plugins, datasets=datasets, warnings=tuple(warnings))


def _manifest_or_dir(plugin: Plugin) -> Path:
    manifest = plugin.path / "plugin.yaml"
    return manifest if manifest.is_file() else plugin.path


def _check_tables(datasets: tuple[Dataset, ...]) -> None:
    from migrate.names import table_name

    seen: dict[str, str] = {}
    for dataset in datasets:
        table = table_name(dataset.name)
        if table in seen:
            raise InventoryError(
                f"datasets {seen[table]!r} and {dataset.name!r} would load into the same table "
                f"{table!r}",
                file=dataset.path,
                hint="rename one of the two directories",
            )
        seen[table] = dataset.name


def _plugins(plugins_dir: Path) -> Iterator[Plugin]:
    from migrate import yamlfile
    from migrate.names import image_repository_name

    if not plugins_dir.is_dir():
        return
    seen: dict[str, str] = {}
    for path in sorted(plugins_dir.iterdir()):
        if not path.is_dir() or path.name in _SKIP_DIRS or path.name.startswith("."):
            continue
        manifest_file = path / "plugin.yaml"
        if manifest_file.is_file():
            located = yamlfile.load(manifest_file, error=InventoryError, what="plugin.yaml")
            data = located.data if located.data is not None else {}
            manifest: PluginManifest = (
                yamlfile.validate(
                    PluginManifest,
                    yamlfile.Located(data, located.file, located.lines),
                    error=InventoryError,
                )
                if data
                else PluginManifest()
            )
        elif any(path.glob("*.py")):
            manifest = PluginManifest()
        else:
            continue
        name = manifest.name or path.name
        image_name = image_repository_name(name)
        if image_name in seen:
            raise InventoryError(
                f"plugins {seen[image_name]!r} and {name!r} would get the same image name "
                f"{image_name!r}",
                file=manifest_file if manifest_file.is_file() else path,
                hint="rename one of them (plugin.yaml `name`)",
            )
        seen[image_name] = name
        yield Plugin(name=name, path=path, manifest=manifest)


def _datasets(root: Path, data_dir: Path, warnings: list[str]) -> Iterator[Dataset]:
    if not data_dir.is_dir():
        return
    inside = root.resolve()
    for directory, entries in _walk(data_dir, inside, warnings):
        files = []
        for path, real in entries:
            fmt = DATA_FORMATS.get(path.suffix.lower())
            if fmt and not path.name.startswith(".") and real.is_file():
                files.append(
                    DataFile(
                        path=real,  # a link inside the application is read at its target
                        relative=path.relative_to(data_dir).as_posix(),
                        format=fmt,
                        size=real.stat().st_size,
                    )
                )
        if not files:
            continue
        if directory == data_dir:
            raise InventoryError(
                f"data files lie directly in {data_dir} (e.g. {files[0].path.name})",
                hint="a dataset is a directory: move them into data/<dataset>/",
            )
        name = directory.relative_to(data_dir).as_posix()
        yield Dataset(name=name, path=directory, files=tuple(files))


def _walk(
    data_dir: Path, inside: Path, warnings: list[str]
) -> Iterator[tuple[Path, list[tuple[Path, Path]]]]:
    """Every directory under `data_dir` (sorted, itself first) with its entries as
    `(path, real path)`. Symbolic links are resolved: one that leads outside the
    application (`inside`) is never followed, and is named in `warnings` (DESIGN 3.5);
    a directory reached twice (a link loop) is walked once."""
    seen: set[Path] = set()
    found: list[tuple[Path, list[tuple[Path, Path]]]] = []
    pending = [data_dir]
    linked: list[Path] = []  # walked after every real directory: the real name wins
    while pending or linked:
        directory = pending.pop() if pending else linked.pop(0)
        real_dir = directory.resolve()
        if real_dir in seen:
            continue
        seen.add(real_dir)
        entries: list[tuple[Path, Path]] = []
        for path in sorted(directory.iterdir()):
            if path.name in _SKIP_DIRS or path.name.startswith("."):
                continue
            real = path.resolve() if path.is_symlink() else path
            if path.is_symlink() and not real.is_relative_to(inside):
                shown = path.relative_to(data_dir.parent).as_posix()
                warnings.append(
                    f"{shown} is a symbolic link to {os.readlink(path)}, outside the "
                    "application: skipped (links that lead out are never followed)"
                )
                continue
            if real.is_dir():
                (linked if path.is_symlink() else pending).append(path)
            else:
                entries.append((path, real))
        found.append((directory, entries))
    yield from sorted(found, key=lambda item: item[0])


def event_graph(plugins: Iterable[Plugin]) -> dict[str, dict[str, list[str]]]:
    """`{plugin name: {"consumes": [...], "produces": [...]}}`: the runtime's
    MIGRATE_EVENT_GRAPH (DESIGN 3.9), for the manifests and `migrate dev up` alike."""
    return {
        p.name: {
            "consumes": list(p.manifest.events.consumes),
            "produces": list(p.manifest.events.produces),
        }
        for p in sorted(plugins, key=lambda p: p.name)
    }
