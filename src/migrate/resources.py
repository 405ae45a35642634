"""Where the packaged `templates/` and `phases/` live.

A wheel carries them as `migrate/_data/<name>`; a source checkout (editable
install, tests) has them at the top of the repository.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from migrate.errors import MigrateError


@cache
def resource_path(name: str) -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "_data" / name, here.parent.parent / name):
        if candidate.is_dir():
            return candidate
    raise MigrateError(f"the installation is incomplete: no {name}/ next to {here}")
