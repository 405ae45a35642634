"""Plugin requirements resolved on the build machine into a wheelhouse.

The image installs them with `pip install --no-index --find-links`, so the
build itself needs no network. `pip wheel` runs with the Python that runs
migrate: use the same minor version as the base image's Python (3.11 for
`python:3.11-slim` and Debian bookworm) so binary wheels fit. A wheelhouse is
kept in `.migrate/wheelhouse/<hash of the requirements>/` and reused.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from migrate.images.errors import PluginImageError

PIP_TIMEOUT = 900  # seconds


def key(requirements: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:16]


def resolve(plugin: str, requirements: Sequence[str], cache_dir: Path) -> list[Path]:
    """The wheel files that satisfy `requirements` (with their dependencies)."""
    if not requirements:
        return []
    target = cache_dir / key(requirements)
    if not (target / ".complete").is_file():
        _download(plugin, requirements, cache_dir, target)
    return sorted(target.glob("*.whl"))


def _download(plugin: str, requirements: Sequence[str], cache_dir: Path, target: Path) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cache_dir))
    try:
        listing = work / "requirements.txt"
        listing.write_text("".join(f"{r}\n" for r in requirements), encoding="utf-8")
        wheels = work / "wheels"
        command = [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--wheel-dir",
            str(wheels),
            "--disable-pip-version-check",
            "--no-input",
            "--progress-bar",
            "off",
            "-r",
            str(listing),
        ]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=PIP_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            raise PluginImageError(
                plugin,
                f"resolving its requirements took longer than {PIP_TIMEOUT} s",
                hint="check that the package index is reachable (PIP_INDEX_URL)",
            ) from None
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()
            errors = [line for line in output.splitlines() if line.startswith("ERROR")]
            last = output.splitlines()[-1] if output else "pip failed"
            reason = "; ".join(errors[:3]) or last
            raise PluginImageError(
                plugin,
                f"cannot resolve its requirements ({', '.join(requirements)}): {reason}",
                hint="fix `requirements` in its plugin.yaml or requirements.txt (does that "
                "version exist?), or make the package index reachable (PIP_INDEX_URL)",
                log=output,
            )
        (wheels / ".complete").write_text("\n".join(requirements) + "\n", encoding="utf-8")
        with contextlib.suppress(OSError):  # another build resolved the same list first
            os.replace(wheels, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
