"""migrate: move a plugin-based, file-backed Python application onto Kubernetes, phase by phase.

The import package and the command are `migrate`; the distribution (what `pip install`
names) is `DISTRIBUTION`, because the PyPI name `migrate` belongs to an unrelated tool.
Every hint and generated file names the distribution through this constant.
"""

from __future__ import annotations

from functools import cache
from typing import Any

DISTRIBUTION = "migrate-k8s-roadmap"
# a source tree that was never installed has no metadata: no version to pin
UNKNOWN_VERSION = "0+unknown"
__version__: str  # read lazily, by __getattr__ below


@cache
def installed_version() -> str:
    """The installed distribution's version (read once, on first use: importlib.metadata
    costs tens of milliseconds, which `migrate --help` does not pay)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return UNKNOWN_VERSION


def __getattr__(name: str) -> Any:
    if name == "__version__":
        return installed_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def install_hint(extra: str | None = None) -> str:
    """`pip install 'migrate-k8s-roadmap[EXTRA]==VERSION'`: the exact install of this migrate."""
    name = f"{DISTRIBUTION}[{extra}]" if extra else DISTRIBUTION
    version = installed_version()
    pin = f"=={version}" if version != UNKNOWN_VERSION else ""
    return f"pip install '{name}{pin}'"
