"""Which dataset files a command works on, whether they can be read, and their SHA-256:
what `plan` needs of the data without the loader (migrate.data.loader), its COPY
machinery or a database driver."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from migrate.errors import UserError

if TYPE_CHECKING:
    from migrate.inventory import DataFile, Dataset, Inventory

__all__ = ["check_readable", "select", "sha256_file", "unreadable"]


def select(inventory: Inventory, names: Sequence[str] | None) -> list[Dataset]:
    """The datasets named (all when none), or a UserError listing the known ones."""
    if not names:
        selected = list(inventory.datasets)
    else:
        known = {d.name: d for d in inventory.datasets}
        missing = [n for n in names if n not in known]
        if missing:
            raise UserError(
                f"no dataset {', '.join(map(repr, missing))} in {inventory.root / 'data'}",
                hint=f"datasets: {', '.join(known) or 'none'}",
            )
        selected = [known[n] for n in names]
    check_readable(selected)
    return selected


def sha256_file(path: Any) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise UserError(_os_reason(exc), file=path, hint=_READ_HINT) from None
    return digest.hexdigest()


_READ_HINT = "make it readable by this user (e.g. chmod a+r), or move it out of data/"


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    return (exc.strerror or type(exc).__name__).lower()


def unreadable(data_file: DataFile, exc: OSError) -> UserError:
    """`data/<file>: permission denied`, and what to do."""
    return UserError(_os_reason(exc), file=f"data/{data_file.relative}", hint=_READ_HINT)


def check_readable(datasets: Sequence[Dataset]) -> None:
    """Refuse at once, naming the file, when a data file cannot be read."""
    for dataset in datasets:
        for data_file in dataset.files:
            try:
                with open(data_file.path, "rb"):
                    pass
            except OSError as exc:
                raise unreadable(data_file, exc) from None
