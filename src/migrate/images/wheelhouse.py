"""An image's requirements resolved on the build machine into a wheelhouse.

The image installs them with `pip install --no-index --find-links`, so the
build itself needs no network. `pip wheel` runs with the Python that runs
migrate: use the same minor version as the base image's Python (3.11 for
`python:3.11-slim` and Debian bookworm) so binary wheels fit. Environment
markers (`; python_full_version < "3.11.3"`) are evaluated for the base
image's Python, not this one, when its marker environment is given (pip has
no option for that: a small wrapper sets it before pip runs). A wheelhouse is
kept in `.migrate/wheelhouse/<hash of the requirements and markers>/` and reused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from migrate.images.errors import ImageError

PIP_TIMEOUT = 900  # seconds


# Runs pip with PEP 508 markers evaluated in the target's environment (JSON in the variable).
_PIP_FOR_TARGET = """
import json, os, runpy
from pip._vendor.packaging import markers
target = json.loads(os.environ["MIGRATE_MARKER_ENVIRONMENT"])
markers.default_environment = lambda: dict(target)
runpy.run_module("pip", run_name="__main__", alter_sys=True)
"""


def key(requirements: Sequence[str], environment: Mapping[str, str] | None = None) -> str:
    text = "\n".join(requirements)
    if environment:
        text += "\n" + json.dumps(dict(environment), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(name: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(name, threading.Lock())


def resolve(
    subject: str,
    requirements: Sequence[str],
    cache_dir: Path,
    environment: Mapping[str, str] | None = None,
) -> list[Path]:
    """The wheel files that satisfy `requirements` (with their dependencies), with
    environment markers evaluated in `environment` (the image's Python; default: this one).

    `subject` names the image in errors (`plugin X`, `the orchestrator image`).
    Concurrent builds of images with the same list wait for one resolution.
    """
    if not requirements:
        return []
    target = cache_dir / key(requirements, environment)
    with _lock(str(target)):
        if not (target / ".complete").is_file():
            _download(subject, requirements, cache_dir, target, environment)
    return sorted(target.glob("*.whl"))


def _download(
    subject: str,
    requirements: Sequence[str],
    cache_dir: Path,
    target: Path,
    environment: Mapping[str, str] | None,
) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cache_dir))
    try:
        listing = work / "requirements.txt"
        listing.write_text("".join(f"{r}\n" for r in requirements), encoding="utf-8")
        wheels = work / "wheels"
        pip = ["-c", _PIP_FOR_TARGET] if environment else ["-m", "pip"]
        variables = dict(os.environ)
        if environment:
            variables["MIGRATE_MARKER_ENVIRONMENT"] = json.dumps(dict(environment))
        command = [
            sys.executable,
            *pip,
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
                command,
                capture_output=True,
                text=True,
                timeout=PIP_TIMEOUT,
                check=False,
                env=variables,
            )
        except subprocess.TimeoutExpired:
            raise ImageError(
                subject,
                f"resolving its requirements took longer than {PIP_TIMEOUT} s",
                hint="check that the package index is reachable (PIP_INDEX_URL)",
            ) from None
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()
            errors = [line for line in output.splitlines() if line.startswith("ERROR")]
            last = output.splitlines()[-1] if output else "pip failed"
            reason = "; ".join(errors[:3]) or last
            raise ImageError(
                subject,
                f"cannot resolve its requirements ({', '.join(requirements)}): {reason}",
                hint="fix `requirements` in its plugin.yaml or requirements.txt (does that "
                "version exist? does it conflict with the runtime's pins in "
                "src/migrate/runtime/requirements.txt?), or make the package index reachable "
                "(PIP_INDEX_URL)",
                log=output,
            )
        (wheels / ".complete").write_text("\n".join(requirements) + "\n", encoding="utf-8")
        with contextlib.suppress(OSError):  # another build resolved the same list first
            os.replace(wheels, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
