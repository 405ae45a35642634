"""`migrate init`: write migrate.yaml and the roadmap for a legacy application."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrate.errors import RefusedError, UserError

if TYPE_CHECKING:
    from migrate.inventory import Inventory


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


def project_name(directory: Path) -> str:
    """The default project name: the directory's name as a DNS label."""
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
    project = name or project_name(project_dir)
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
